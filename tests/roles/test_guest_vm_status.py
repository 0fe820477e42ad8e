"""guest_vm_status as a module result: kvmnetlab.lab.guest_wait_list turns the guest starts'
registered results into kvmnetlab.lab.guest_ssh_wait's guests, and the module returns every
guest's status (with its pid; a guest that did not start down, with why, without a wait).
This was a set_fact ... combine loop in roles/guest_vm/tasks/register.yml.

Fast: no guest boots; the module is run through Ansible on localhost (its SSH attempts go
nowhere: the guests here have no live QEMU).
"""

from __future__ import annotations

from tests.helpers import adhoc, collection_plugin

gvf = collection_plugin("filter", "guest_vm")


def started(name, ok=True, action="none", pid=0, **extra):
    """One registered loop result of kvmnetlab.lab.guest_qemu (loop_var guest_vm_guest)."""
    return {"guest_vm_guest": {"name": name, "mgmt_ip": "198.19.0.1"}, "ok": ok,
            "action": action, "pid": pid, "changed": action != "none", **extra}


def test_wait_list_keeps_the_pid_and_says_why_a_guest_was_not_started():
    results = [started("g1", pid=11), started("g2", action="started", pid=12),
               started("g3", ok=False, error="qemu: cannot open /dev/kvm")]
    assert gvf.guest_wait_list(results) == [
        {"name": "g1", "mgmt_ip": "198.19.0.1", "pid": 11},
        {"name": "g2", "mgmt_ip": "198.19.0.1", "pid": 12},
        {"name": "g3", "mgmt_ip": "198.19.0.1", "pid": 0,
         "not_started": "qemu: cannot open /dev/kvm"}]
    checked = gvf.guest_wait_list(results, check_mode=True)
    assert "not_started" not in checked[0]  # running already: waited for
    assert checked[1]["not_started"] == "check mode: not started"
    assert checked[2]["not_started"] == "qemu: cannot open /dev/kvm"
    assert gvf.guest_wait_list([]) == []


def test_ssh_wait_returns_every_guest_in_order_with_its_pid(tmp_path):
    (tmp_path / "id").write_text("")
    (tmp_path / "known_hosts").write_text("")
    guests = gvf.guest_wait_list([
        started("kvmnl-g8", ok=False, error="no room"),
        started("kvmnl-g9", pid=4242),  # no pidfile: its QEMU is not running
    ])
    rc, res, _ = adhoc("localhost", "kvmnetlab.lab.guest_ssh_wait", {
        "guests": guests, "guests_dir": str(tmp_path / "guests"), "user": "kvmnl",
        "identity_file": str(tmp_path / "id"), "known_hosts": str(tmp_path / "known_hosts"),
        "timeout": 5}, timeout=120)
    assert rc == 0, res
    status = res["status"]
    assert list(status) == ["kvmnl-g8", "kvmnl-g9"]
    assert status["kvmnl-g8"] == {
        "ok": False, "pid": 0, "seconds": 0, "reason": "no room",
        "console_log": str(tmp_path / "guests" / "kvmnl-g8" / "console.log")}
    assert status["kvmnl-g9"]["ok"] is False and status["kvmnl-g9"]["pid"] == 4242
    assert "QEMU process of kvmnl-g9 is not running" in status["kvmnl-g9"]["reason"]
