"""Every ``kvmnetlab_*`` variable, declared once: name, type, bounds, default, unit, meaning.

The declaration is data (``PARAMETERS``); everything else is produced from it or checked
against it:

- the campaign's validation (:mod:`kvmnetlab.campaign`) reads the bounds and defaults of
  the groups ``campaign``, ``search`` and ``sockperf`` from here, and the preflight's
  ``kvmnetlab.lab.campaign_validate`` reads those variables from the play by the names
  declared here (:func:`from_variables`), so no layer renames them by hand;
- the manifest's ``parameters`` are keyed by :attr:`Parameter.key`, the variable's name
  without its ``kvmnetlab_`` prefix (``sockperf`` only when on, so that the manifests of
  campaigns without it keep the keys they always had);
- the README's table of campaign parameters is :func:`markdown_table`, and a test
  checks it, the roles' argument specs and the variables the playbooks read against
  this declaration.

The other groups are the lab's profile (``lab``), where a campaign's files go (``run``),
and variables each inventory host carries (``host``, most set by the roles that start
guests and containers). This module imports nothing of the project.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PREFIX = "kvmnetlab_"
#: groups whose values a campaign validates and records in its manifest's ``parameters``
RECORDED = ("campaign", "search", "sockperf")
GROUPS = (*RECORDED, "run", "lab", "host")
TYPES = ("int", "float", "bool", "str", "path", "list", "dict")


@dataclass(frozen=True)
class Parameter:
    """One ``kvmnetlab_*`` variable; ``low``/``high`` bound numbers (and list items)."""

    name: str
    type: str
    meaning: str
    group: str
    #: the value taken when none is given; for a required one, the embedded lab's
    #: (inventory/local), which a test keeps equal
    default: Any = None
    unit: str = ""
    low: float | None = None
    high: float | None = None
    #: the README's default column when the value is drawn or differs between labs
    shown: str | None = None
    #: the value must be given (the lab's inventory gives it)
    required: bool = False
    #: ``role.option``: the role option the validated value is handed to, whose argument
    #: spec must agree with this declaration (type and default)
    role_option: str | None = None

    @property
    def key(self) -> str:
        """The name without ``kvmnetlab_``: the manifest's key and campaign.py's field."""
        return self.name.removeprefix(PREFIX)

    @property
    def recorded(self) -> bool:
        return self.group in RECORDED

    def shown_default(self) -> str:
        if self.shown is not None:
            return self.shown
        if self.default is None:
            return "none"
        if isinstance(self.default, bool):
            return f"`{str(self.default).lower()}`"
        if isinstance(self.default, str):
            return f"`{self.default}`"
        if isinstance(self.default, tuple | list):
            return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in self.default)
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)

    def bounds(self) -> str:
        if self.low is None:
            return ""
        return f"{_number(self.low)} to {_number(self.high)}"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}".replace(",", " ")
    return f"{value:g}" if isinstance(value, float) else str(value)


def _p(name: str, type_: str, group: str, meaning: str, **more: Any) -> Parameter:
    return Parameter(PREFIX + name, type_, meaning, group, **more)


PARAMETERS: tuple[Parameter, ...] = (
    # -- the campaign: what each repetition measures ------------------------------------
    _p("repetitions", "int", "campaign", "repetitions of every scenario: one per block, "
       "each block runs every scenario once in an order drawn from the seed",
       default=5, unit="repetitions", low=1, high=1000, required=True),
    _p("ping_count", "int", "campaign", "ICMP probes per repetition",
       default=200, unit="packets", low=1, high=10_000_000, required=True),
    _p("ping_interval_s", "float", "campaign", "spacing of probes; below 0.002 s needs root",
       default=0.01, unit="s", low=0.0002, high=60.0, required=True),
    _p("ping_payload_bytes", "int", "campaign", "ICMP payload; at least 16 so ping can "
       "carry its send timestamp", default=56, unit="bytes", low=16, high=65_507,
       required=True),
    _p("rate_pps", "int", "campaign", "offered rate of the loss-at-rate phase",
       default=10000, unit="frames/s", low=1, high=100_000_000, required=True),
    _p("rate_frames", "int", "campaign", "frames sent in the loss-at-rate phase",
       default=20000, unit="frames", low=1, high=10**10, required=True),
    # 60 bytes without CRC is Ethernet's minimum; 9014 a jumbo frame's
    _p("rate_frame_bytes", "int", "campaign", "frame size of the loss-at-rate phase, "
       "without CRC (60 is Ethernet's minimum)", default=60, unit="bytes", low=60,
       high=9014, required=True),
    _p("seed", "int", "campaign", "seed of the blocks' orders (recorded)",
       unit="", low=0, high=2**63 - 1, shown="drawn"),
    _p("scenarios", "list", "campaign", "scenario names from `scenarios/seed.yml`",
       default=(), shown="all"),
    _p("control", "str", "campaign", "a scenario to copy as an A/A control (`virtio` adds "
       "`virtio_aa`, run in the same blocks; the report must not find the two different)"),
    # -- the throughput search (docs/throughput.md) ---------------------------------------
    _p("search", "bool", "search", "the throughput search (NDR, PDR, RTT under load) per "
       "scenario and repetition", default=True),
    _p("search_min_pps", "float", "search", "lowest offered rate searched",
       default=100, unit="frames/s", low=1, high=100_000_000),
    _p("search_max_pps", "float", "search", "highest offered rate searched",
       default=200_000, unit="frames/s", low=2, high=100_000_000,
       shown="200000 (the embedded lab sets 50000)"),
    _p("search_granularity", "float", "search", "relative width hi/lo - 1 at which a rate "
       "is found", default=0.1, unit="ratio", low=0.001, high=0.5),
    _p("search_pdr_ratio", "float", "search", "loss ratio PDR allows (0.005 is 0.5 %)",
       default=0.005, unit="ratio", low=0.0, high=0.5),
    _p("search_trial_s", "float", "search", "duration of a search trial",
       default=0.3, unit="s", low=0.05, high=3600),
    _p("search_validation_s", "float", "search", "duration of a validation trial",
       default=0.5, unit="s", low=0.05, high=3600),
    _p("search_validations", "int", "search", "validation trials at each found rate",
       default=1, unit="trials", low=0, high=10),
    _p("search_max_trials", "int", "search", "trials a search may run",
       default=14, unit="trials", low=1, high=1000),
    _p("search_tolerance", "float", "search", "how far the generator may fall short of the "
       "offered rate before a trial is invalid (0.05 is 5 %)",
       default=0.05, unit="ratio", low=0.0, high=0.5),
    _p("search_load_s", "float", "search", "duration of the RTT probes under load at each "
       "fraction", default=0.5, unit="s", low=0.05, high=3600),
    _p("search_repetitions", "int", "search", "the first n repetitions of each scenario "
       "search (0: every repetition); a search costs about 10 s in a TCG guest",
       default=0, unit="repetitions", low=0, high=100_000,
       shown="0, all (the embedded lab sets 3)"),
    _p("search_load_fractions", "list", "search", "fractions of the PDR at which RTT is "
       "probed under load", default=(0.1, 0.5, 0.9), unit="ratio", low=0.001, high=1.0),
    # -- sockperf --------------------------------------------------------------------------
    _p("sockperf", "bool", "sockperf", "also measure a UDP request/response RTT with "
       "sockperf (a server on the receiver, ping-pong from the sender after ping and "
       "fping, one message per probe interval)", default=False,
       role_option="campaign.campaign_sockperf"),
    # -- where a campaign's files go -------------------------------------------------------
    _p("campaign_id", "str", "run", "an existing id resumes that campaign", shown="UTC time"),
    _p("results_dir", "path", "run", "where campaign folders go (relative to the checkout)",
       default="results"),
    _p("scenario_file", "path", "run", "scenario definitions (relative to the checkout)",
       default="scenarios/seed.yml"),
    # -- the lab's profile (inventory group_vars) -----------------------------------------
    _p("lab_name", "str", "lab", "the lab's name: names its lock, recorded in every "
       "manifest", required=True),
    _p("lab_kind", "str", "lab", "embedded (this machine, network namespaces) or real",
       required=True),
    _p("lock_dir", "path", "lab", "where the controller keeps the lab's lock",
       required=True),
    _p("state_dir", "path", "lab", "where the lab keeps its state (SSH keys, known_hosts, "
       "image cache)", required=True),
    _p("repo", "path", "lab", "the kvmnetlab checkout (where ansible.cfg is)",
       required=True),
    _p("controller_dir", "path", "lab", "a real lab's folder on the controller for its "
       "keys and lock"),
    _p("guests_pf_ring", "bool", "lab", "build PF_RING in the guests (needs a local "
       "source, see playbooks/guests.yml)", default=False),
    # -- variables of one inventory host --------------------------------------------------
    _p("data_interface", "str", "host", "the host's NIC on the lab's data link"),
    _p("netns", "str", "host", "the network namespace an embedded-lab host lives in"),
    _p("shares_kernel", "bool", "host", "the host shares the controller's kernel (an "
       "embedded-lab host or a container): no kernel tuning", default=False),
    _p("guest_hypervisor", "str", "host", "a guest's hypervisor (set by guest_vm)"),
    _p("guest_netdev", "dict", "host", "a guest's netdev settings (set by guest_vm)"),
    _p("guest_qemu_pid", "int", "host", "a guest's QEMU process (set by guest_vm)"),
    _p("guest_data_ip", "str", "host", "a guest's or container's data address (set by "
       "guest_vm and container_lab)"),
    _p("container_hypervisor", "str", "host", "the host that runs a container (set by "
       "container_lab)"),
    _p("container_runtime", "str", "host", "a container's runtime (set by container_lab)"),
    _p("container_name", "str", "host", "a container's name (set by container_lab)"),
    _p("container_lxcpath", "path", "host", "a container's LXC path (set by container_lab)"),
    _p("container_netns", "str", "host", "a container's network namespace (set by "
       "container_lab)"),
    _p("container_pid", "int", "host", "a container's init process (set by container_lab)"),
    _p("container_cgroup_cpuacct", "path", "host", "a container's cpuacct cgroup (set by "
       "container_lab)"),
    _p("container_cgroup_memory", "path", "host", "a container's memory cgroup (set by "
       "container_lab)"),
)

BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}
BY_KEY: dict[str, Parameter] = {p.key: p for p in PARAMETERS}


def group(*names: str) -> tuple[Parameter, ...]:
    """The declared parameters of the groups ``names``, in declaration order."""
    return tuple(p for p in PARAMETERS if p.group in names)


def recorded() -> tuple[Parameter, ...]:
    """What a campaign validates and records in its manifest's ``parameters``."""
    return group(*RECORDED)


def from_variables(variables: Mapping[str, Any],
                   parameters: Iterable[Parameter] | None = None) -> dict[str, Any]:
    """The declared variables found in ``variables`` (the play's), keyed by
    :attr:`Parameter.key`; an absent variable is absent (its default applies)."""
    chosen = recorded() if parameters is None else parameters
    return {p.key: variables[p.name] for p in chosen if p.name in variables}


def lock_path(lock_dir: str, lab_name: str) -> str:
    """The lab's lock file: one campaign at a time per lab name."""
    return f"{lock_dir}/{lab_name}.lock"


#: the same path as the inventory defines it, for Ansible to template (nightly)
LOCK_PATH_EXPRESSION = "{{ kvmnetlab_lock_dir }}/{{ kvmnetlab_lab_name }}.lock"


def markdown_table(parameters: Iterable[Parameter] | None = None) -> str:
    """The README's table of the parameters a user sets for a campaign."""
    chosen = group(*RECORDED, "run") if parameters is None else parameters
    lines = ["| variable | default | unit | bounds | meaning |", "|---|---|---|---|---|"]
    for p in chosen:
        lines.append(f"| `{p.name}` | {p.shown_default()} | {p.unit} | {p.bounds()} "
                     f"| {p.meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # the README's table: python -m kvmnetlab.parameters
    print(markdown_table(), end="")
