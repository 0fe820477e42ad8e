"""Data model: the tidy views the statistics and tables are computed from.

Pure functions; no file access. ``rtt_samples`` is the one shape every RTT
statistic takes: answered probes only, one row per probe, ``scenario`` an
ordered categorical in report order and ``rtt_us`` sorted within each scenario
(so the statistics can use order statistics without sorting again).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _columns(rtt: pd.DataFrame, order: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(answered mask, scenario code in ``order`` or -1, RTT in µs) as NumPy arrays."""
    answered = rtt["answered"].to_numpy(dtype=bool)
    scen = rtt["scenario"]
    if not isinstance(scen.dtype, pd.CategoricalDtype):
        scen = scen.astype("category")
    codes = scen.cat.set_categories(order).cat.codes.to_numpy()
    return answered, codes, rtt["rtt_us"].to_numpy(dtype=float)


def rtt_samples(rtt: pd.DataFrame | None, order: list[str]) -> pd.DataFrame:
    """Answered RTTs (µs) per scenario, scenarios in ``order``, values sorted within each."""
    dtype = pd.CategoricalDtype(order, ordered=True)
    if rtt is None or rtt.empty:
        return pd.DataFrame(
            {"scenario": pd.Categorical([], dtype=dtype), "rtt_us": np.array([], dtype=float)}
        )
    answered, codes, values = _columns(rtt, order)
    pieces, labels = [], []
    for code in range(len(order)):
        chunk = values[(codes == code) & answered]
        if chunk.size:
            pieces.append(np.sort(chunk))
            labels.append(np.full(chunk.size, code, dtype=np.int32))
    if not pieces:
        return rtt_samples(None, order)
    values = np.concatenate(pieces)
    del pieces
    return pd.DataFrame(
        {
            "scenario": pd.Categorical.from_codes(np.concatenate(labels), dtype=dtype),
            "rtt_us": values,
        },
        copy=False,
    )


def samples_by_scenario(samples: pd.DataFrame) -> dict[str, np.ndarray]:
    """Split a samples frame into sorted arrays, one per scenario that has data.

    Views into the frame when it already has the :func:`rtt_samples` layout;
    otherwise the values are grouped and sorted here.
    """
    if samples.empty:
        return {}
    scen = samples["scenario"]
    if not isinstance(scen.dtype, pd.CategoricalDtype):
        scen = scen.astype("category")
    codes = scen.cat.codes.to_numpy()
    values = samples["rtt_us"].to_numpy(dtype=float)
    names = list(scen.cat.categories)
    if np.all(codes[1:] >= codes[:-1]):
        bounds = np.flatnonzero(np.diff(codes)) + 1
        starts = np.concatenate(([0], bounds))
        ends = np.concatenate((bounds, [codes.size]))
        out = {}
        for s, e in zip(starts, ends, strict=True):
            chunk = values[s:e]
            if chunk.size > 1 and np.any(chunk[1:] < chunk[:-1]):
                chunk = np.sort(chunk)
            out[str(names[codes[s]])] = chunk
        return out
    return {
        str(names[c]): np.sort(values[codes == c]) for c in np.unique(codes) if c >= 0
    }


def rtt_by_repetition(
    rtt: pd.DataFrame | None, order: list[str]
) -> dict[str, dict[int, np.ndarray]]:
    """Answered RTTs (µs) of each repetition, sorted: scenario -> repetition -> values.

    The two levels of the data: probes within repetitions. Scenarios in ``order``
    (those without answered probes left out), repetitions ascending; a
    repetition's probes are pooled over its sending hosts.
    """
    if rtt is None or rtt.empty:
        return {}
    answered, codes, values = _columns(rtt, order)
    reps = rtt["repetition"].to_numpy()
    out: dict[str, dict[int, np.ndarray]] = {}
    for code, name in enumerate(order):
        mask = (codes == code) & answered
        if not mask.any():
            continue
        chunk, chunk_reps = values[mask], reps[mask]
        del mask
        if chunk_reps.size and np.all(chunk_reps == chunk_reps[0]):
            out[name] = {int(chunk_reps[0]): np.sort(chunk)}
            continue
        by_rep = np.argsort(chunk_reps, kind="stable")
        chunk, chunk_reps = chunk[by_rep], chunk_reps[by_rep]
        del by_rep
        starts = np.flatnonzero(np.concatenate(([True], chunk_reps[1:] != chunk_reps[:-1])))
        ends = np.concatenate((starts[1:], [chunk.size]))
        out[name] = {int(chunk_reps[s]): np.sort(chunk[s:e])
                     for s, e in zip(starts, ends, strict=True)}
    return out
