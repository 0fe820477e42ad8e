#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load, reload or unload a kernel module with modprobe, with its parameters."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kernel_module
short_description: Load, reload or unload a kernel module with its parameters
description:
  - Loads I(name) with C(modprobe), passing I(params) on its command line, when it is not in
    C(/proc/modules) (I(state=present)), or unloads it with C(modprobe -r) (I(state=absent)).
    A module built into the kernel (C(/sys/module/<name>) without C(initstate)) counts as
    loaded.
  - When the module is loaded but a parameter readable in C(/sys/module/<name>/parameters)
    differs from I(params), reloads it (unload, then load with I(params)) if I(reload) is
    true. Parameters that sysfs does not expose cannot be compared and are listed in
    C(unverified_params).
  - What cannot be done - a kernel without loadable module support, module loading disabled,
    a module that is missing, in use, built in, or loaded with other parameters while
    I(reload) is false, a failing modprobe - fails the task (I(unavailable=fail)) or is
    reported in C(setting) with status C(unavailable) and the reason (I(unavailable=report)).
  - Reports C(changed) only when it loaded, reloaded or unloaded the module. In check mode,
    C(modprobe --dry-run) tells whether that would work.
version_added: "0.1.0"
author: kvmnetlab
options:
  name:
    description: Module name (C(vhost_net), C(pf_ring)); dashes and underscores are equivalent.
    type: str
    required: true
  params:
    description:
      - Module parameters (name -> value), given to C(modprobe) as C(name=value) in name order;
        a boolean becomes C(1) or C(0).
      - Compared with sysfs (C(1), C(Y) and C(yes) are the same, as are C(0), C(N) and C(no)).
    type: dict
    default: {}
  state:
    description: Whether the module should be loaded.
    type: str
    choices: [present, absent]
    default: present
  reload:
    description: Reload a loaded module whose sysfs parameters differ from I(params).
    type: bool
    default: true
  unavailable:
    description:
      - What a request that cannot be met does. C(fail) fails the task. C(report) leaves it
        ok and reports C(setting.status=unavailable) with C(setting.reason), for a role that
        records what the host could not do (roles/kvm_host).
      - In check mode with C(fail), a load that C(modprobe --dry-run) refuses is predicted
        anyway, with a warning (an earlier task of the same check run may not have installed
        the module).
    type: str
    choices: [fail, report]
    default: fail
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Load vhost-net for the guests' virtio NICs; a kernel that cannot is recorded
  kvmnetlab.lab.kernel_module:
    name: vhost_net
    unavailable: report
  register: vhost_net

- name: Load pf_ring with its parameters, reloading it when they differ
  kvmnetlab.lab.kernel_module:
    name: pf_ring
    params:
      min_num_slots: 4096
      enable_tx_capture: 1
    reload: true
"""

RETURN = r"""
setting:
  description:
    - C({requested, status, observed, reason, changed}); C(requested) is true for
      I(state=present); C(status) is C(applied), C(already) or C(unavailable); C(observed) is
      C(loaded), C(built-in), C(not loaded), or null on a kernel without module support.
  returned: always
  type: dict
action:
  description: What was done (or would be, in check mode), C(none), C(load), C(reload) or C(unload).
  returned: always
  type: str
loaded:
  description: Whether the module is loaded after the task (or would be, in check mode).
  returned: always
  type: bool
params:
  description: The module's parameters as sysfs shows them after the task.
  returned: always
  type: dict
mismatched_params:
  description: Parameters whose sysfs value differed from I(params) before the task.
  returned: always
  type: list
  elements: str
unverified_params:
  description: Requested parameters that sysfs does not expose.
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kvmnetlab.lab.plugins.module_utils.host_files import read_text

_TRUE = {"1", "y", "yes", "true", "on"}
_FALSE = {"0", "n", "no", "false", "off"}
_LOADED = ("loaded", "built-in")


def same_value(wanted, actual):
    """Compare a requested parameter value with the text sysfs shows for it."""
    wanted_text = str(wanted).strip().lower()
    actual_text = str(actual).strip().lower()
    if isinstance(wanted, bool):
        wanted_text = "1" if wanted else "0"
    if wanted_text == actual_text:
        return True
    return any(wanted_text in group and actual_text in group for group in (_TRUE, _FALSE))


def compare_params(wanted, actual):
    """Return (mismatched, unverified) parameter names, each sorted."""
    mismatched = sorted(
        k for k, v in wanted.items() if k in actual and not same_value(v, actual[k])
    )
    unverified = sorted(k for k in wanted if k not in actual)
    return mismatched, unverified


def param_args(params):
    """Render params as modprobe arguments, in a stable order."""
    rendered = []
    for key in sorted(params):
        value = params[key]
        if isinstance(value, bool):
            value = 1 if value else 0
        rendered.append(f"{key}={value}")
    return rendered


def module_state(name, proc="/proc", sys_module="/sys/module"):
    """``loaded``, ``built-in``, ``not loaded`` or None (no loadable module support)."""
    modules = read_text(f"{proc}/modules")
    if modules is not None and any(line.split()[0] == name
                                   for line in modules.splitlines() if line.strip()):
        return "loaded"
    if os.path.isdir(f"{sys_module}/{name}") and not os.path.exists(
            f"{sys_module}/{name}/initstate"):
        return "built-in"
    return "not loaded" if modules is not None else None


def sysfs_params(name, sys_module="/sys/module"):
    """Parameter -> its text in ``/sys/module/<name>/parameters`` (unreadable ones left out)."""
    folder = os.path.join(sys_module, name, "parameters")
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return {}
    params = {}
    for entry in entries:
        text = read_text(os.path.join(folder, entry))
        if text is not None:
            params[entry] = text.strip()
    return params


def plan(name, state, reload, before, mismatched, proc="/proc"):
    """(action, reason): what to do from the module's state; a reason when it cannot be done."""
    if state == "absent":
        if before not in _LOADED:
            return "none", ""
        if before == "built-in":
            return "none", f"{name} is built into the kernel and cannot be unloaded"
        return "unload", ""
    if before in _LOADED and not mismatched:
        return "none", ""
    if before == "built-in":
        return "none", (f"{name} is built into the kernel with other parameters "
                        f"({', '.join(mismatched)}) and cannot be reloaded")
    if before == "loaded" and not reload:
        return "none", (f"module {name} is loaded with other parameters "
                        f"({', '.join(mismatched)}) and reload is false")
    if (read_text(f"{proc}/sys/kernel/modules_disabled") or "").strip() == "1":
        return "none", f"module loading is disabled ({proc}/sys/kernel/modules_disabled is 1)"
    return ("reload" if before == "loaded" else "load"), ""


def manage(name, *, state="present", params=None, reload=True, unavailable="fail",
           check_mode=False, run=None, proc="/proc", sys_module="/sys/module"):
    """The module's result (without ``changed``, which is ``setting.changed``).

    ``run(argv)`` runs modprobe and returns (rc, stdout, stderr).
    """
    name = name.replace("-", "_")
    params = dict(params or {})
    entry = {"requested": state == "present", "status": "unavailable", "observed": None,
             "reason": "", "changed": False}
    out = {"setting": entry, "action": "none", "loaded": False, "params": {},
           "mismatched_params": [], "unverified_params": [], "warnings": []}
    before = module_state(name, proc, sys_module)
    entry["observed"] = before
    if before is None:
        entry["reason"] = (f"the running kernel ({os.uname().release}) cannot load modules "
                           f"({proc}/modules is absent)")
        return out
    out["loaded"] = before in _LOADED
    if before in _LOADED:
        out["params"] = sysfs_params(name, sys_module)
        out["mismatched_params"], out["unverified_params"] = compare_params(params,
                                                                            out["params"])
    action, reason = plan(name, state, reload, before, out["mismatched_params"], proc)
    if reason:
        entry["reason"] = reason
        return out
    if action == "none":
        entry["status"] = "already"
        return out
    dry = ["--dry-run"] if check_mode else []
    steps = {"load": [["modprobe", *dry, name, *param_args(params)]],
             "unload": [["modprobe", *dry, "-r", name]],
             "reload": [["modprobe", *dry, "-r", name],
                        ["modprobe", *dry, name, *param_args(params)]]}[action]
    for argv in steps:
        rc, stdout, stderr = run(argv)
        if rc != 0:
            why = f"{' '.join(argv)} failed: {(stderr or stdout).strip() or f'exit {rc}'}"
            if check_mode and unavailable == "fail" and action == "load":
                out["warnings"].append(f"{why}; predicting the load anyway (check mode)")
                break
            entry["reason"] = why
            out.update(rc=rc, stdout=stdout, stderr=stderr)
            if not check_mode and action == "reload":
                after = module_state(name, proc, sys_module)
                entry["observed"], out["loaded"] = after, after in _LOADED
                entry["changed"] = after != before
            return out
    out["action"] = action
    if check_mode:
        entry.update(status="applied", changed=True,
                     observed="loaded" if state == "present" else "not loaded")
        out["loaded"] = state == "present"
        return out
    after = module_state(name, proc, sys_module)
    entry["observed"], out["loaded"] = after, after in _LOADED
    out["params"] = sysfs_params(name, sys_module) if after in _LOADED else {}
    entry["changed"] = True
    if (state == "present") == (after in _LOADED):
        entry["status"] = "applied"
    else:
        entry["reason"] = f"{' '.join(steps[-1])} succeeded but {name} is {after}"
    return out


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "params": {"type": "dict", "default": {}},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "reload": {"type": "bool", "default": True},
            "unavailable": {"type": "str", "choices": ["fail", "report"], "default": "fail"},
        },
        supports_check_mode=True,
    )
    modprobe = module.get_bin_path("modprobe", opt_dirs=["/usr/sbin", "/sbin"])

    def run(argv):
        if not modprobe:
            return 127, "", "modprobe is not installed"
        return module.run_command([modprobe, *argv[1:]])

    p = module.params
    result = manage(p["name"], state=p["state"], params=p["params"], reload=p["reload"],
                    unavailable=p["unavailable"], check_mode=module.check_mode, run=run)
    for warning in result.pop("warnings"):
        module.warn(warning)
    setting = result["setting"]
    if setting["status"] == "unavailable" and p["unavailable"] == "fail":
        module.fail_json(msg=f"kernel module {p['name']}: {setting['reason']}",
                         changed=setting["changed"], **result)
    module.exit_json(changed=setting["changed"], **result)


if __name__ == "__main__":
    main()
