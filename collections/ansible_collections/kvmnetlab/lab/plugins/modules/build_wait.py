#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the build_wait action plugin (plugins/action/build_wait.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: build_wait
short_description: Wait for a long build running as an async job, printing its progress
description:
  - An action plugin. This file holds its documentation; the options below are also the
    argument spec its arguments are validated against.
  - "Follows a job started by a task with C(async) and C(poll: 0) on the task's host (or the
    host it is delegated to). It checks the job with C(ansible.builtin.async_status) every
    I(poll) seconds and, every I(interval) seconds, prints one progress line at normal
    verbosity, naming the build, the host, the time spent waiting and the last line of the
    build's I(log), for example
    C(build pf_ring.ko on bm1: 2 min 05 s, last line: CC [M] .../pf_ring.o).
    No retry is shown as a failure while the build runs."
  - Returns when the job ends. A job that failed (or ran past I(timeout)) fails the task with
    the last I(tail) lines of I(log) in the message. A finished job's status file is removed.
  - This is the one way kvmnetlab waits for its long builds (the kernel, PF_RING, the guest
    image's debootstrap); the C(build_ship) role starts a build and calls it.
version_added: "0.1.0"
author: kvmnetlab
options:
  jid:
    description: The job id (C(ansible_job_id)) registered by the task that started the build.
    type: str
    required: true
  name:
    description: What is built, as the progress lines and messages name it.
    type: str
    required: true
  log:
    description:
      - The build's log on the host (the job's output redirected to it). Progress lines show
        its last line, and a failure shows its last I(tail) lines.
      - Without it, progress lines show the time only.
    type: path
  steps:
    description:
      - An extended regular expression (C(grep -E)); the lines of I(log) matching it are
        counted and shown as steps done (for a kernel build, C(^  [A-Z0-9_]+ ) counts Kbuild's
        C(CC), C(LD), ... lines).
    type: str
  interval:
    description: Seconds between progress lines.
    type: int
    default: 30
  poll:
    description: Seconds between checks of the job (at most I(interval)).
    type: int
    default: 5
  timeout:
    description:
      - Seconds after which the wait gives up and fails, with the log's tail, while the job
        still runs. C(0) waits until the job ends (its C(async) limit ends it at the latest).
      - Give the C(async) limit of the job; the wait allows the async wrapper a grace of
        I(poll) seconds, twice, and at least 30 s, to record its own timeout first.
    type: int
    default: 0
  tail:
    description: Lines of I(log) a failure message shows.
    type: int
    default: 25
attributes:
  check_mode:
    support: full
    details: Only reads the job's status and the log; roles skip it with the job in check mode.
  diff_mode:
    support: none
notes:
  - C(changed) is always false; the task that started the job reports the change.
"""

EXAMPLES = r"""
- name: Start the build in the background
  ansible.builtin.shell:
    cmd: make -j2 bzImage > /var/cache/build/build.log 2>&1
    chdir: /var/cache/build/src
  async: 14400
  poll: 0
  register: kernel_job
  changed_when: true

- name: Wait for the build, a progress line a minute
  kvmnetlab.lab.build_wait:
    jid: "{{ kernel_job.ansible_job_id }}"
    name: kernel bzImage
    log: /var/cache/build/build.log
    steps: "^  [A-Z0-9_]+ "
    interval: 60
    timeout: 14400
"""

RETURN = r"""
rc:
  description: The build's exit status.
  returned: when the job ran to its end
  type: int
start:
  description: When the job started, as the command module records it.
  returned: when the job reports it
  type: str
end:
  description: When the job ended, as the command module records it.
  returned: when the job reports it
  type: str
delta:
  description: How long the job ran, as the command module records it.
  returned: when the job reports it
  type: str
elapsed:
  description: Seconds spent waiting.
  returned: always
  type: int
log:
  description: The build log (the I(log) option).
  returned: when I(log) is given
  type: str
msg:
  description: Why the wait failed, ending with the last I(tail) lines of I(log).
  returned: on failure
  type: str
"""
