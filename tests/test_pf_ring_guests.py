"""PF_RING for real in two embedded-lab guests (opt-in: marker pfring).

Runs only when KVMNETLAB_PFRING_SRC names a local PF_RING source tree (tag 8.8.0,
classic layout) and the machine is root. The test
1. boots the lab's guests (playbooks/guests.yml; they join group `guests`),
2. runs playbooks/build.yml on them (local method, pf_ring.ko loaded),
3. checks with testinfra that pf_ring is loaded in both and pfcount/pfsend exist,
4. sends with pfsend in the first guest and counts with pfcount in the second over
   the data bridge (pfsend's own destination MAC; the bridge floods it and pfcount
   listens promiscuously), counting only pfsend's flow (`udp and dst port 3000`), and
5. keeps the tools' real output; with KVMNETLAB_PFRING_SAVE_FIXTURES=1 it copies it
   to tests/fixtures/pfring_real/ for the pfsend/pfcount parsers (CAPTURE.md beside
   them must then record the command, the date and the PF_RING version).
The guests are torn down afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SRC = os.environ.get("KVMNETLAB_PFRING_SRC", "")
COUNT = 20000  # frames
RATE = 20000  # frames per second

pytestmark = [
    pytest.mark.pfring,
    pytest.mark.skipif(not SRC, reason="set KVMNETLAB_PFRING_SRC to a PF_RING source tree"),
]

PLAYBOOK = """\
- name: Guests
  ansible.builtin.import_playbook: {root}/playbooks/guests.yml

- name: PF_RING
  ansible.builtin.import_playbook: {root}/playbooks/build.yml
  vars:
    pf_ring_hosts: guests

- name: Record how to reach the guests
  hosts: guests
  gather_facts: false
  tasks:
    - name: Write a testinfra inventory on the controller
      ansible.builtin.copy:
        content: |
          all:
            hosts:
          {{% for name in groups['guests'] %}}
              {{{{ name }}}}:
                ansible_host: {{{{ hostvars[name].ansible_host }}}}
                ansible_user: root
                ansible_ssh_private_key_file: {{{{ hostvars[name].ansible_ssh_private_key_file }}}}
                ansible_ssh_common_args: '{{{{ hostvars[name].ansible_ssh_common_args }}}}'
          {{% endfor %}}
        dest: "{out}/guests.yml"
        mode: "0600"
      delegate_to: localhost
      run_once: true

- name: pfsend in the first guest, pfcount in the second
  hosts: guests
  gather_facts: false
  vars:
    sender: "{{{{ groups['guests'][0] }}}}"
    receiver: "{{{{ groups['guests'][1] }}}}"
  tasks:
    - name: Find the data interface
      ansible.builtin.shell:
        cmd: >-
          set -o pipefail &&
          ip -o -4 addr show to {{{{ kvmnetlab_guest_data_ip }}}} | awk '{{print $2}}'
        executable: /bin/bash
      register: data_if
      changed_when: false

    - name: Start pfcount on the receiver
      ansible.builtin.shell:
        cmd: >-
          timeout 300 pfcount -i {{{{ data_if.stdout }}}} -N {count}
          -f "udp and dst port 3000" > /root/pfcount.stdout 2> /root/pfcount.stderr
      async: 330
      poll: 0
      register: pfcount_job
      changed_when: true
      when: inventory_hostname == receiver

    - name: Let pfcount open its ring
      ansible.builtin.pause:
        seconds: 5

    - name: Send with pfsend
      ansible.builtin.shell:
        cmd: >-
          pfsend -i {{{{ data_if.stdout }}}} -n {count} -p {rate}
          -S {{{{ kvmnetlab_guest_data_ip }}}}
          -D {{{{ hostvars[receiver].kvmnetlab_guest_data_ip }}}}
          > /root/pfsend.stdout 2> /root/pfsend.stderr
      changed_when: true
      when: inventory_hostname == sender

    - name: Wait for pfcount
      ansible.builtin.async_status:
        jid: "{{{{ pfcount_job.ansible_job_id }}}}"
      register: pfcount_done
      until: pfcount_done.finished
      retries: 60
      delay: 5
      when: inventory_hostname == receiver

    - name: Fetch the raw output
      ansible.builtin.fetch:
        src: "/root/{{{{ item }}}}"
        dest: "{out}/raw/{{{{ inventory_hostname }}}}/"
        flat: true
      loop: "{{{{ ['pfsend.stdout', 'pfsend.stderr'] if inventory_hostname == sender
                 else ['pfcount.stdout', 'pfcount.stderr'] }}}}"
"""


def ansible(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(BIN / "ansible-playbook"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=7200,
    )


@pytest.fixture
def guests_torn_down():
    yield
    ansible("playbooks/guests.yml", "--tags", "guests_teardown")


def test_pfsend_to_pfcount_between_two_guests(tmp_path, guests_torn_down):
    if os.geteuid() != 0:
        pytest.skip("the embedded lab needs root")
    testinfra = pytest.importorskip("testinfra")
    play = tmp_path / "pfring.yml"
    play.write_text(PLAYBOOK.format(root=ROOT, out=tmp_path, count=COUNT, rate=RATE))
    done = ansible(
        str(play), "-e", "pf_ring_install_method=local", "-e", f"pf_ring_local_src={SRC}"
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]

    inventory = tmp_path / "guests.yml"
    names = [
        line.strip().rstrip(":")
        for line in inventory.read_text().splitlines()
        if line.startswith("    ") and not line.startswith("      ")
    ]
    assert len(names) >= 2, f"fewer than two guests came up: {names}"
    for name in names[:2]:
        host = testinfra.get_host(f"ansible://{name}", ansible_inventory=str(inventory))
        assert host.file("/proc/modules").contains("^pf_ring ")
        assert "PF_RING Version" in host.file("/proc/net/pf_ring/info").content_string
        assert host.file("/usr/local/bin/pfsend").is_file
        assert host.file("/usr/local/bin/pfcount").is_file

    sender, receiver = names[:2]
    sent = (tmp_path / "raw" / sender / "pfsend.stdout").read_text()
    counted = (tmp_path / "raw" / receiver / "pfcount.stderr").read_text()
    assert "Absolute Stats" in counted, counted[-2000:]
    assert f"{COUNT:,}".replace(",", "'") in counted, "pfcount did not count every frame sent"
    assert "TX rate" in sent or "Sent" in sent, sent[-2000:]

    if os.environ.get("KVMNETLAB_PFRING_SAVE_FIXTURES") == "1":
        target = ROOT / "tests" / "fixtures" / "pfring_real"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "raw" / sender / "pfsend.stdout", target / "pfsend_guest.txt")
        shutil.copy(tmp_path / "raw" / receiver / "pfcount.stderr", target / "pfcount_guest.txt")
