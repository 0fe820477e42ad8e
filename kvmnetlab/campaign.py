"""Campaign parameters and scenario definitions: validation and the run plan.

Everything here is pure and runs on the controller before any host is touched,
so a malformed parameter or scenario stops the campaign with a message that
names the file and the field.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kvmnetlab import parameters as declared
from kvmnetlab.errors import ConfigError

SCENARIO_FORMAT_VERSION = 1
#: What each scenario-file format_version changed. A change that makes a file of an older
#: version invalid bumps the version, says here what changed, and adds to
#: SCENARIO_UPGRADES the step that upgrades a file of the version before it.
SCENARIO_FORMAT_CHANGES: dict[int, str] = {
    1: "scenarios with axes, policy, collectors, guests and knobs; knob_defaults optional "
       "(the project's defaults, KNOBS[...]['default'], when omitted)",
}
#: version v -> a function from a document of version v to one of version v + 1
SCENARIO_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}

AXES: dict[str, tuple[str, ...]] = {
    "virtualization": ("none", "kvm", "container"),
    "io_path": ("none", "virtio", "virtio_user", "elvis", "elvis_patched", "elvis_upstream"),
    "capture": ("pf_ring", "vpf_ring", "passthrough", "af_packet"),
    "policy": ("substitute", "skip", "fail"),
}
# `io_path: elvis` names ELVIS's I/O path; `elvis_mode` says how a lab provides it:
# patched (a kernel built with the lab's patch series) or upstream (vhost busy
# polling, a dedicated I/O core, halt polling). Loading normalises the pair to
# io_path elvis_patched / elvis_upstream, the spelling the resolver works with.
ELVIS_MODES = ("patched", "upstream")
# The netdev knobs a scenario can set (in `knobs:`, or for every scenario in the
# file's `knob_defaults:`), with their unit, range and the project's default (what a
# file without `knob_defaults:` gets). Their values are data: the scenario file may
# set the defaults, in one place, and the resolver reads each scenario's knobs.
KNOBS: dict[str, dict[str, Any]] = {
    "poll_us": {"unit": "µs", "low": 0, "high": 1_000_000, "null": False, "default": 50,
                "meaning": "vhost busy-poll budget (QEMU tap netdev poll-us)"},
    "halt_poll_ns": {"unit": "ns", "low": 0, "high": 1_000_000_000, "null": False,
                     "default": 200_000,
                     "meaning": "KVM halt polling (/sys/module/kvm/parameters/halt_poll_ns)"},
    "io_thread_core": {"unit": "core", "low": 0, "high": 4095, "null": True,
                       "words": ("dedicated",), "default": "dedicated",
                       "meaning": "core of the I/O thread: a core number, or dedicated"},
    "queues": {"unit": "queue pairs", "low": 1, "high": 256, "null": True, "default": None,
               "meaning": "virtio-net queue pairs the serving guest must have (null: any)"},
}
# `guests: N` in a virtualized scenario: N guests (or containers, for virtualization
# container) receive N concurrent flows from one sender inside one counter window.
MAX_INSTANCES = 8
SCENARIO_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
CAMPAIGN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Parameters:
    """Validated campaign parameters; units are in the names."""

    repetitions: int
    ping_count: int
    ping_interval_s: float
    ping_payload_bytes: int
    rate_pps: int
    rate_frames: int
    rate_frame_bytes: int
    seed: int
    scenarios: tuple[str, ...]
    control: str | None = None  # the scenario an A/A control copies (see with_control)
    search: Search | None = None  # the throughput search (NDR/PDR), None when off
    sockperf: bool = False  # sockperf's UDP ping-pong beside ping and fping

    def as_dict(self) -> dict[str, Any]:
        return {
            "repetitions": self.repetitions,
            "ping_count": self.ping_count,
            "ping_interval_s": self.ping_interval_s,
            "ping_payload_bytes": self.ping_payload_bytes,
            "rate_pps": self.rate_pps,
            "rate_frames": self.rate_frames,
            "rate_frame_bytes": self.rate_frame_bytes,
            "seed": self.seed,
            "scenarios": list(self.scenarios),
            "control": self.control,
            "search": self.search is not None,
            **(self.search or Search.default()).as_dict(),
            # recorded only when on: manifests from before it was declared lack the key,
            # and a campaign without sockperf keeps the parameters it always had
            **({"sockperf": True} if self.sockperf else {}),
        }


#: the throughput search's settings (kvmnetlab_search_*, declared in kvmnetlab.parameters,
#: group search): setting -> its declaration; ``search`` itself and the load fractions aside
SEARCH_FIELDS: dict[str, declared.Parameter] = {
    p.key.removeprefix("search_"): p for p in declared.group("search")
    if p.key not in ("search", "search_load_fractions")}
#: fractions of the PDR at which RTT is probed under load (kvmnetlab_search_load_fractions)
LOAD_FRACTIONS: tuple[float, ...] = tuple(declared.BY_KEY["search_load_fractions"].default)


@dataclass(frozen=True)
class Search:
    """The throughput search's settings; units in the names (see SEARCH_FIELDS)."""

    min_pps: float
    max_pps: float
    granularity: float
    pdr_ratio: float
    trial_s: float
    validation_s: float
    validations: int
    max_trials: int
    tolerance: float
    load_s: float
    repetitions: int = 0
    load_fractions: tuple[float, ...] = LOAD_FRACTIONS

    @classmethod
    def default(cls) -> Search:
        """The settings when none is given (their defaults are SEARCH_FIELDS')."""
        return cls(**{name: p.default for name, p in SEARCH_FIELDS.items()})

    def as_dict(self) -> dict[str, Any]:
        return {**{f"search_{name}": getattr(self, name) for name in SEARCH_FIELDS},
                "search_load_fractions": list(self.load_fractions)}


def validate_search(raw: dict[str, Any], source: str) -> Search | None:
    """``search`` (bool, default on) and the ``search_*`` settings, or None when off."""
    # absent: on (its declared default); null is refused, as it always was
    spec = declared.BY_KEY["search"]
    enabled = _bool(source, spec, raw.get(spec.key, spec.default))
    values: dict[str, Any] = {name: _number(source, p, raw.get(p.key))
                              for name, p in SEARCH_FIELDS.items()}
    fractions = raw.get("search_load_fractions")
    fractions = LOAD_FRACTIONS if fractions in (None, "") else fractions
    if isinstance(fractions, str):
        fractions = [part.strip() for part in fractions.strip("[]").split(",") if part.strip()]
    if not isinstance(fractions, list | tuple):
        raise ConfigError(source, "kvmnetlab_search_load_fractions",
                          f"must be a list of fractions of the PDR, got {fractions!r}")
    bounds = declared.BY_KEY["search_load_fractions"]
    values["load_fractions"] = tuple(
        _float(source, f"{bounds.name}[{i}]", f, bounds.low, bounds.high)
        for i, f in enumerate(fractions))
    if values["min_pps"] >= values["max_pps"]:
        raise ConfigError(source, "kvmnetlab_search_min_pps",
                          f"must be below kvmnetlab_search_max_pps ({values['max_pps']}), "
                          f"got {values['min_pps']}")
    return Search(**values) if enabled else None


def _number(source: str, p: declared.Parameter, value: Any) -> int | float:
    """``value`` of the declared int or float ``p`` (its default when absent, unless it is
    required), in bounds."""
    if value in (None, "") and not p.required:
        value = p.default
    if p.type == "int":
        return _int(source, p.name, value, p.low, p.high)
    return _float(source, p.name, value, p.low, p.high)


def _bool(source: str, p: declared.Parameter, value: Any) -> bool:
    """``value`` of the declared bool ``p``; yes/no, true/false as text are accepted (the
    command line's -e gives text)."""
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
        value = value.lower() in ("true", "yes")
    if not isinstance(value, bool):
        raise ConfigError(source, p.name, f"must be true or false, got {value!r}")
    return value


def _int(source: str, field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(source, field, f"must be an integer, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(source, field, f"must be an integer, got {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(source, field, f"must be between {low} and {high}, got {number}")
    return number


def _float(source: str, field: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool):
        raise ConfigError(source, field, f"must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(source, field, f"must be a number, got {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(source, field, f"must be between {low} and {high}, got {number}")
    return number


def validate_parameters(
    raw: dict[str, Any], known_scenarios: list[str], source: str = "campaign parameters"
) -> Parameters:
    """Check the campaign parameters (the kvmnetlab_* variables) and return them typed.

    ``raw`` uses the variable names without the ``kvmnetlab_`` prefix.
    """
    measures = [p for p in declared.group("campaign") if p.required]
    for p in measures:
        if p.key not in raw or raw[p.key] is None:
            raise ConfigError(source, p.name, "is required")
    values = {p.key: _number(source, p, raw[p.key]) for p in measures}
    seed_value = raw.get("seed")
    if seed_value in (None, ""):
        seed = random.SystemRandom().randrange(2**31)
    else:
        seed = _number(source, declared.BY_KEY["seed"], seed_value)
    wanted = raw.get("scenarios") or []
    if isinstance(wanted, str):
        wanted = [part.strip() for part in wanted.split(",") if part.strip()]
    if not isinstance(wanted, list):
        raise ConfigError(source, "kvmnetlab_scenarios", f"must be a list, got {wanted!r}")
    twice = sorted({n for n in wanted if isinstance(n, str) and wanted.count(n) > 1})
    if twice:
        raise ConfigError(source, "kvmnetlab_scenarios",
                          f"names {', '.join(map(repr, twice))} more than once; list each "
                          "scenario once (kvmnetlab_repetitions sets how often it runs)")
    for name in wanted:
        if name not in known_scenarios:
            raise ConfigError(
                source,
                "kvmnetlab_scenarios",
                f"unknown scenario {name!r}; known: {', '.join(known_scenarios)}",
            )
    chosen = tuple(wanted) if wanted else tuple(known_scenarios)
    control = raw.get("control")
    if control in (None, ""):
        control = None
    elif not isinstance(control, str) or control not in chosen:
        raise ConfigError(
            source,
            "kvmnetlab_control",
            f"must name one of the campaign's scenarios ({', '.join(chosen)}), got {control!r}",
        )
    search = validate_search(raw, source)
    # absent, null or empty: off (its declared default), as the campaign role always read it
    spec = declared.BY_KEY["sockperf"]
    sockperf = _bool(source, spec, spec.default if raw.get(spec.key) in (None, "")
                     else raw[spec.key])
    return Parameters(**values, seed=seed, scenarios=chosen, control=control, search=search,
                      sockperf=sockperf)


def validate_campaign_id(value: Any, source: str = "campaign parameters") -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not CAMPAIGN_ID.match(value):
        raise ConfigError(
            source,
            "kvmnetlab_campaign_id",
            f"must match {CAMPAIGN_ID.pattern} (letters, digits, . _ -), got {value!r}",
        )
    return value


def _normalise_elvis(source: str, where: str, definition: dict[str, Any]) -> dict[str, Any]:
    """``io_path: elvis`` + ``elvis_mode: M`` -> ``io_path: elvis_M`` (elvis_mode kept)."""
    mode = definition.get("elvis_mode")
    io_path = definition["io_path"]
    if io_path == "elvis":
        if mode not in ELVIS_MODES:
            raise ConfigError(source, f"{where}.elvis_mode",
                              f"must be one of {', '.join(ELVIS_MODES)} when io_path is elvis, "
                              f"got {mode!r}")
        return {**definition, "io_path": f"elvis_{mode}"}
    if mode is not None:
        if io_path.startswith("elvis_") and io_path == f"elvis_{mode}":
            return definition
        raise ConfigError(source, f"{where}.elvis_mode",
                          f"only applies with io_path elvis, got io_path {io_path!r}")
    if io_path.startswith("elvis_"):
        return {**definition, "elvis_mode": io_path.removeprefix("elvis_")}
    return definition


def _knobs(source: str, where: str, raw: Any, complete: bool) -> dict[str, Any]:
    """Validate a knobs mapping; ``complete`` requires every knob (the file's defaults)."""
    if not isinstance(raw, dict):
        raise ConfigError(source, where, f"must be a mapping of knob -> value, got {raw!r}")
    unknown = sorted(set(raw) - set(KNOBS))
    if unknown:
        raise ConfigError(source, f"{where}.{unknown[0]}",
                          f"unknown knob; known: {', '.join(KNOBS)}")
    out: dict[str, Any] = {}
    for knob, spec in KNOBS.items():
        field = f"{where}.{knob}"
        if knob not in raw:
            if complete:
                raise ConfigError(source, field, f"is required ({spec['meaning']}, "
                                                 f"{spec['unit']})")
            continue
        value = raw[knob]
        if value is None:
            if not spec["null"]:
                raise ConfigError(source, field, "must not be null")
        elif value not in spec.get("words", ()):
            value = _int(source, field, value, spec["low"], spec["high"])
        out[knob] = value
    return out


def project_knob_defaults() -> dict[str, Any]:
    """The knob values a scenario file without ``knob_defaults`` starts from."""
    return {knob: spec["default"] for knob, spec in KNOBS.items()}


def upgrade_scenarios(document: dict[str, Any], source: str) -> dict[str, Any]:
    """``document`` upgraded, step by step, to SCENARIO_FORMAT_VERSION; a version this code
    does not read is refused with a message that names what changed."""
    version = document.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or not (
            1 <= version <= SCENARIO_FORMAT_VERSION):
        changes = "; ".join(f"{v}: {what}" for v, what in sorted(SCENARIO_FORMAT_CHANGES.items()))
        raise ConfigError(source, "format_version",
                          f"must be 1 to {SCENARIO_FORMAT_VERSION} (the versions this kvmnetlab "
                          f"reads: {changes}), got {version!r}")
    while version < SCENARIO_FORMAT_VERSION:
        if version not in SCENARIO_UPGRADES:
            raise ConfigError(source, "format_version",
                              f"{version} has no upgrade to {version + 1} "
                              f"({SCENARIO_FORMAT_CHANGES[version + 1]}); rewrite the file")
        document = {**SCENARIO_UPGRADES[version](document), "format_version": version + 1}
        version += 1
    return document


def load_scenarios(path: str | Path, known_collectors: Collection[str] | None = None
                   ) -> dict[str, dict[str, Any]]:
    """Read and validate a scenario file; return name -> definition, in file order.

    ``known_collectors`` are the names a scenario's ``collectors`` may list: the caller
    passes the collectors' registry (``collectors.base.known()``; the core does not import
    the collectors). Without it the names are checked when the run's collectors are planned.
    """
    source = str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(source, "(file)", "scenario file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, "(file)", f"not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(source, "(file)", "must be a mapping with a 'scenarios' key")
    document = upgrade_scenarios(document, source)
    scenarios = document.get("scenarios")
    if not isinstance(scenarios, dict) or not scenarios:
        raise ConfigError(source, "scenarios", "must be a non-empty mapping of name -> definition")
    defaults = (project_knob_defaults() if "knob_defaults" not in document else
                _knobs(source, "knob_defaults", document["knob_defaults"], complete=True))
    numbers: dict[int, str] = {}
    result: dict[str, dict[str, Any]] = {}
    for name, definition in scenarios.items():
        where = f"scenarios.{name}"
        if not isinstance(name, str) or not SCENARIO_NAME.match(name):
            raise ConfigError(source, where, f"name must match {SCENARIO_NAME.pattern}")
        if not isinstance(definition, dict):
            raise ConfigError(source, where, "must be a mapping")
        unknown = set(definition) - {"number", "title", "description", "collectors",
                                     "elvis_mode", "knobs", "guests", *AXES}
        if unknown:
            raise ConfigError(source, f"{where}.{sorted(unknown)[0]}", "unknown field")
        number = _int(source, f"{where}.number", definition.get("number"), 1, 10_000)
        if number in numbers:
            raise ConfigError(
                source, f"{where}.number", f"{number} is already used by {numbers[number]}"
            )
        numbers[number] = name
        title = definition.get("title")
        if not isinstance(title, str) or not title.strip():
            raise ConfigError(source, f"{where}.title", "must be a non-empty string")
        for axis, allowed in AXES.items():
            value = definition.get(axis)
            if value not in allowed:
                raise ConfigError(
                    source, f"{where}.{axis}", f"must be one of {', '.join(allowed)}, got {value!r}"
                )
        definition = _normalise_elvis(source, where, definition)
        if (definition["virtualization"] == "none") != (definition["io_path"] == "none"):
            raise ConfigError(
                source,
                f"{where}.io_path",
                "must be 'none' exactly when virtualization is 'none'",
            )
        if "guests" in definition:
            if definition["virtualization"] == "none":
                raise ConfigError(source, f"{where}.guests",
                                  "only applies to a virtualized scenario (kvm or container)")
            definition = {**definition, "guests": _int(source, f"{where}.guests",
                                                        definition["guests"], 1, MAX_INSTANCES)}
        chosen = definition.get("collectors")
        if chosen is not None and (not isinstance(chosen, list) or not all(
                isinstance(c, str) for c in chosen)):
            raise ConfigError(source, f"{where}.collectors", "must be a list of collector names")
        if chosen and known_collectors is not None:
            for collector in chosen:
                if collector not in known_collectors:
                    raise ConfigError(source, f"{where}.collectors",
                                      f"unknown collector {collector!r}; known: "
                                      f"{', '.join(sorted(known_collectors))}")
        definition = {**definition, "knobs": {
            **defaults, **_knobs(source, f"{where}.knobs", definition.get("knobs") or {},
                                 complete=False)}}
        result[name] = {"name": name, **definition}
    return result


CONTROL_SUFFIX = "_aa"


def control_name(scenario: str) -> str:
    """The name of the A/A control that copies ``scenario``."""
    return f"{scenario}{CONTROL_SUFFIX}"


def with_control(
    scenarios: dict[str, dict[str, Any]], control: str | None, source: str = "campaign parameters"
) -> dict[str, dict[str, Any]]:
    """The campaign's scenarios plus, when ``control`` names one, its A/A control.

    The control is a copy of that scenario's whole definition (axes, knobs, policy,
    collectors) under the name ``<scenario>_aa``, with ``control_of: <scenario>``
    so the analysis knows it, the next free number, and a title that says what it
    is. It is resolved, run and stored like any other scenario, in the same blocks.
    A correct analysis must not find the two different.
    """
    if control is None:
        return dict(scenarios)
    if control not in scenarios:
        raise ConfigError(source, "kvmnetlab_control", f"unknown scenario {control!r}")
    name = control_name(control)
    if name in scenarios:
        raise ConfigError(source, "kvmnetlab_control",
                          f"the control's name {name!r} is already a scenario")
    if not SCENARIO_NAME.match(name):
        raise ConfigError(source, "kvmnetlab_control",
                          f"the control's name {name!r} must match {SCENARIO_NAME.pattern}")
    original = scenarios[control]
    number = max(int(d.get("number") or 0) for d in scenarios.values()) + 1
    copy = {**original, "name": name, "number": number, "control_of": control,
            "title": f"{original.get('title') or control} (A/A control, a copy of {control})",
            "knobs": dict(original.get("knobs") or {})}
    return {**scenarios, name: copy}


def campaign_scenarios(
    scenarios: dict[str, dict[str, Any]], parameters: Parameters
) -> dict[str, dict[str, Any]]:
    """The definitions a campaign runs: the chosen scenarios, in file order, then the control."""
    everything = with_control(scenarios, parameters.control)
    names = list(parameters.scenarios)
    if parameters.control is not None:
        names.append(control_name(parameters.control))
    return {name: everything[name] for name in names}


def instances(definition: dict[str, Any]) -> int:
    """How many guests (or containers) a scenario runs at once: its ``guests``, else 1."""
    return int(definition.get("guests", 1))


def needs(scenarios: dict[str, dict[str, Any]]) -> dict[str, int]:
    """What the lab must start for these scenarios: ``guests``, the largest guest count of
    a kvm scenario (at least 1, the embedded lab's one guest, as before this existed), and
    ``containers``, the largest count of a container scenario (0 when there is none)."""
    def most(kind: str) -> int:
        return max((instances(d) for d in scenarios.values()
                    if d["virtualization"] == kind), default=0)

    return {"guests": max(1, most("kvm")), "containers": most("container")}


def run_flows(run: dict[str, Any], endpoints: dict[str, Any],
              hostvars: Any) -> list[dict[str, Any]]:
    """The flows of one run, in order: one per receiving host.

    A bare-metal run has one flow, to the bare-metal receiver; a virtualized one has one
    per guest (``resolved.guests``, else ``resolved.guest``) or per container
    (``resolved.containers``). Each flow is ``{host, address}`` (the receiver and its data
    address, as the campaign looks the interface up) with ``receiver``, ``target_address``,
    ``receiver_shares_kernel``, ``qemu_pid`` (a guest's QEMU) and ``container_cgroup``
    (a container's cpuacct cgroup), read from the receivers' host variables.
    """
    def var(host: str, name: str) -> Any:
        try:
            return hostvars[host].get(name) if host in hostvars else None
        except KeyError:
            return None

    kind = run.get("virtualization") or "none"
    if kind == "none":
        bm = endpoints["bare_metal"]
        pairs = [(bm["receiver"], bm["target_address"])]
    else:
        if kind == "container":
            names = list(run.get("containers") or [])
        else:
            names = list(run.get("guests") or ([run["guest"]] if run.get("guest") else []))
        pairs = [(name, var(name, "kvmnetlab_guest_data_ip") or "") for name in names]
    return [{"host": host, "address": str(address).strip(), "receiver": host,
             "target_address": str(address).strip(),
             "receiver_shares_kernel": bool(var(host, "kvmnetlab_shares_kernel") or False),
             "qemu_pid": var(host, "kvmnetlab_guest_qemu_pid") if kind not in
             ("none", "container") else None,
             "container_cgroup": var(host, "kvmnetlab_container_cgroup_cpuacct")
             if kind == "container" else None}
            for host, address in pairs]


def more_flows(flows: list[dict[str, Any]], link_cache: dict[str, Any],
               pf_ring: dict[str, bool]) -> list[dict[str, Any]]:
    """Flows 2..N as kvmnetlab.lab.collector_plan's ``more_flows``: each receiver with its
    links (``ip -j addr show``, looked up once per host and address) and PF_RING state."""
    return [{"receiver": f["receiver"], "target_address": f["target_address"],
             "receiver_links": link_cache[f"{f['host']}|{f['address']}"],
             "receiver_pf_ring": bool(pf_ring.get(f["receiver"], False)),
             "receiver_shares_kernel": f["receiver_shares_kernel"], "qemu_pid": f["qemu_pid"],
             "container_cgroup": f["container_cgroup"]}
            for f in flows[1:]]


def plan_runs(scenarios: list[str], repetitions: int, seed: int) -> list[dict[str, Any]]:
    """Every (scenario, repetition) once, in blocks, reproducibly from ``seed``.

    Block k holds repetition k of every scenario, in an order drawn from ``seed``
    afresh for each block: a randomised complete block design. Drift over the
    campaign (a warming host, a neighbour's load) then shifts every scenario of a
    block alike and cancels in within-block comparisons; the analysis pairs
    scenarios by block. Each run records its ``block``.
    """
    rng = random.Random(seed)
    runs = []
    for block in range(1, repetitions + 1):
        names = list(scenarios)
        rng.shuffle(names)
        runs += [{"scenario": name, "repetition": block, "block": block} for name in names]
    return runs
