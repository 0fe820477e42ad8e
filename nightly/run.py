"""One night: check, run site.yml, publish, prune, record, notify."""

from __future__ import annotations

import datetime as _dt
import sys
from pathlib import Path
from typing import Any, TextIO

from kvmnetlab.store import Store
from nightly import lab, publish, retention
from nightly.config import ConfigError, Settings
from nightly.playbook import PlaybookResult, run_site
from nightly.status import (
    INTERRUPTED,
    RUNNING,
    NightStatus,
    driver_gone,
    notify,
    read,
    this_driver,
    write,
)

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2, 3, 4
EXIT_STUCK = 5  # skipped max_skipped nights in a row: the lab lock may be stuck


def utcnow() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ident() -> str:
    """The runner artifacts' folder name: one per attempt (a resumed night has several)."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


class Night:
    """The state of one night while it runs; :meth:`run` returns the exit status."""

    def __init__(self, settings: Settings, out: TextIO | None = None,
                 err: TextIO | None = None) -> None:
        self.s = settings
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.status = NightStatus(night=settings.night_id, started_at=utcnow())
        self.playbook: PlaybookResult | None = None
        self.stuck = False  # this night is the max_skipped-th skipped in a row
        self._reported: list[dict[str, Any]] = []  # history/reported.json as read

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        self.status.warnings.append(text)
        print(f"kvmnetlab-nightly: warning: {text}", file=self.err, flush=True)

    # -- steps ------------------------------------------------------------------------

    def check_resumable(self) -> None:
        if retention.has_pruned_files(self.s.night_dir):
            raise ConfigError("command line", "--night-id",
                              f"night {self.s.night_id} had its raw files pruned "
                              f"({self.s.night_dir}); it cannot be run again")

    def refused_for_disk(self) -> bool:
        free = lab.free_gib(self.s.results_dir)
        if free >= self.s.min_free_gib:
            return False
        self.status.outcome = "refused"
        self.status.reason = (f"only {free:.2f} GiB free at {self.s.results_dir}, below the "
                              f"minimum of {self.s.min_free_gib:.2f} GiB (min_free_gib)")
        print(f"kvmnetlab-nightly: {self.status.reason}; the night is refused",
              file=self.err, flush=True)
        return True

    def lock_file(self) -> Path | None:
        if self.s.lock_file is not None:
            return self.s.lock_file
        try:
            return lab.resolve_lock_file(self.s.repo, self.s.inventory, self.s.extra_vars)
        except lab.LockResolveError as exc:
            self.warn(f"the lab lock's path could not be resolved ({exc}); site.yml's "
                      "preflight checks the lock itself")
            return None

    def account_for_interrupted(self) -> None:
        """Every earlier night whose status.json still says running, and whose driver no
        longer runs, was interrupted: each is recorded as failed and notified."""
        for path in sorted(self.s.results_dir.glob("*/nightly/status.json")):
            doc = read(path)
            if doc and doc.get("outcome") == RUNNING and path.parent.parent.name != (
                    self.s.night_id) and doc.get("night") == path.parent.parent.name:
                self._interrupted(doc)

    def _interrupted(self, latest: dict[str, Any]) -> None:
        why = driver_gone(latest.get("driver"))
        if why is None:
            return  # still running: the lab lock decides what this night does
        night = str(latest["night"])
        reason = f"{INTERRUPTED}: the night stopped before it finished ({why})"
        self.warn(f"night {night} was {reason}; recorded as failed")
        old = NightStatus(night=night, started_at=str(latest.get("started_at") or ""),
                          outcome="failed", reason=reason, finished_at=utcnow(),
                          campaign_id=latest.get("campaign_id"), driver=latest.get("driver") or {},
                          runner_artifacts=latest.get("runner_artifacts"))
        path = self.s.results_dir / night / "nightly" / "status.json"
        try:
            write(old, path, self.s.history_dir / "status.json")
            campaign = self.s.results_dir / night
            publish.record_night(self.s.history_dir,
                                 campaign if Store(campaign).exists() else None,
                                 night=night, outcome="failed", reason=reason,
                                 started_at=old.started_at)
        except Exception as exc:  # this night goes on; the next start tries again
            self.warn(f"night {night}: interruption not recorded: {type(exc).__name__}: {exc}")
            return
        if self.s.notify_command:
            problem = notify(self.s.notify_command, path)
            if problem:
                self.warn(problem)

    def mark_running(self) -> None:
        """status.json says "running" (with what identifies this driver) until the end."""
        self.status.driver = this_driver()
        final = self.status.outcome
        self.status.outcome = RUNNING
        try:
            write(self.status, self.s.nightly_dir / "status.json",
                  self.s.history_dir / "status.json")
        except OSError as exc:
            self.warn(f"status.json not written at the start: {exc}")
        self.status.outcome = final

    def skipped_in_a_row(self) -> int:
        """How many nights before this one were skipped in a row (from the catalog)."""
        try:
            catalog = publish.read_catalog(self.s.history_dir)
        except Exception as exc:  # the count is advice; the history is read again later
            self.warn(f"history not read to count skipped nights: {type(exc).__name__}: {exc}")
            return 0
        outcomes = (catalog.drop_duplicates("night").sort_values(["started_at", "night"])
                    .loc[lambda f: f["night"] != self.s.night_id, "outcome"].tolist())
        count = 0
        for outcome in reversed(outcomes):
            if outcome != "skipped":
                break
            count += 1
        return count

    def skipped_for_lock(self) -> bool:
        path = self.lock_file()
        holder = lab.live_holder(path) if path is not None else None
        if holder is None:
            return False
        self.status.outcome = "skipped"
        self.status.reason = holder.describe()
        self.say(f"night {self.s.night_id} skipped: {holder.describe()}")
        return True

    def check_stuck(self) -> None:
        before = self.skipped_in_a_row()
        if before + 1 < self.s.max_skipped:
            return
        self.stuck = True
        self.status.reason = (f"{before + 1} nights in a row skipped (max_skipped "
                              f"{self.s.max_skipped}); the lab lock may be stuck: "
                              f"{self.status.reason}")
        print(f"kvmnetlab-nightly: {self.status.reason}", file=self.err, flush=True)

    def run_playbook(self) -> None:
        extravars: dict[str, Any] = {**self.s.extra_vars,
                                     "kvmnetlab_results_dir": str(self.s.results_dir),
                                     "kvmnetlab_campaign_id": self.s.night_id}
        private = self.s.nightly_dir / "runner"
        self.say(f"night {self.s.night_id}: site.yml on {self.s.inventory} "
                 f"(runner data in {private})")
        self.status.campaign_id = self.s.night_id
        result = run_site(repo=self.s.repo, private_dir=private, ident=_ident(),
                          inventory=self.s.inventory, extravars=extravars, tags=self.s.tags,
                          skip_tags=self.s.skip_tags, limit=self.s.limit, out=self.out,
                          timeout_s=round(self.s.timeout_h * 3600))
        self.playbook = result
        self.status.rc = result.rc
        self.status.runner_artifacts = str(result.artifacts)
        busy = result.busy_reason if result.rc != 0 else None
        if busy:
            self.status.outcome, self.status.reason = "skipped", busy
        elif result.rc != 0:
            self.status.outcome, self.status.reason = "failed", result.reason()
        elif not Store(self.s.night_dir).exists():
            self.status.outcome = "failed"
            self.status.reason = (f"site.yml succeeded but wrote no campaign in {self.s.night_dir} "
                                  "(do --tags/--skip-tags leave out the campaign phase?)")
        else:
            self.status.outcome = "done"

    def publish_done(self) -> None:
        """The report, the catalog, change points, the dashboard, this night's new changes."""
        campaign = self.s.night_dir
        self.status.report = str(publish.build_report(campaign, self.s.repo))
        catalog = publish.record_night(self.s.history_dir, campaign, night=self.s.night_id,
                                       outcome="done", reason=None,
                                       started_at=self.status.started_at)
        self._analyse(catalog)

    def _analyse(self, catalog: Any) -> None:
        done = publish.analyse(self.s.history_dir, catalog, p_value=self.s.p_value,
                               min_segment=self.s.min_segment)
        self.status.dashboard = str(done.dashboard) if done.dashboard else None
        reported = publish.load_reported(self.s.history_dir / "reported.json")
        regressions, progressions = publish.new_changes(publish.change_records(done.changes),
                                                        reported)
        self.status.regressions, self.status.progressions = regressions, progressions
        self._reported = reported

    def publish_other(self) -> None:
        """A night that did not run: its outcome row in the catalog, the dashboard anew."""
        campaign = self.s.night_dir if Store(self.s.night_dir).exists() else None
        try:
            catalog = publish.record_night(self.s.history_dir, campaign, night=self.s.night_id,
                                           outcome=self.status.outcome,
                                           reason=self.status.reason,
                                           started_at=self.status.started_at)
            self._analyse(catalog)
        except Exception as exc:  # the outcome stands; the history is best effort here
            self.warn(f"history not updated: {type(exc).__name__}: {exc}")
        # a night that did not run reports no change of its own
        self.status.regressions, self.status.progressions = [], []

    def prune(self) -> None:
        try:
            current = retention.Night(self.s.night_id, self.s.night_dir, self.status.outcome,
                                      self.status.started_at)
            pruned = retention.apply(self.s.results_dir, self.s.keep_raw_nights, utcnow(),
                                     current)
        except OSError as exc:
            self.warn(f"retention: {exc}")
            return
        for item in pruned:
            if item.files:
                self.say(f"retention: night {item.night}: {item.files} raw file(s), "
                         f"{item.bytes / 2**20:.1f} MiB deleted")
            for rel in item.missing:
                self.warn(f"retention: night {item.night}: {rel} is recorded but missing "
                          "(not marked pruned)")
        self.status.pruned = [{"night": p.night, "files": p.files, "bytes": p.bytes}
                              for p in pruned if p.files]

    def finish(self) -> int:
        self.status.finished_at = utcnow()
        status_path = self.s.nightly_dir / "status.json"
        try:
            write(self.status, status_path, self.s.history_dir / "status.json")
        except OSError as exc:  # e.g. the disk is full: the exit status still tells
            print(f"kvmnetlab-nightly: error: {status_path} not written: {exc}",
                  file=self.err, flush=True)
        if self.status.regressions or self.status.progressions:
            try:
                publish.save_reported(self.s.history_dir / "reported.json",
                                      self._reported, self.status.regressions,
                                      self.status.progressions, night=self.s.night_id)
            except OSError as exc:
                print(f"kvmnetlab-nightly: warning: reported.json not written: {exc}",
                      file=self.err, flush=True)
        for change in self.status.regressions:
            print(f"REGRESSION {change['scenario']} {change['metric']} at night "
                  f"{change['night']}: {_pct(change['change_pct'])} "
                  f"(95 % CI {_pct(change['ci_low_pct'])} to {_pct(change['ci_high_pct'])}, "
                  f"p = {change['p_value']:.2g})", file=self.err, flush=True)
        code = self.exit_code()
        self.say(f"night {self.s.night_id}: {self.status.outcome}"
                 f"{': ' + self.status.reason if self.status.reason else ''} "
                 f"(status {status_path}, exit {code})")
        if self.s.notify_command:
            problem = notify(self.s.notify_command, status_path)
            if problem:
                print(f"kvmnetlab-nightly: warning: {problem}", file=self.err, flush=True)
        return code

    def exit_code(self) -> int:
        outcome = self.status.outcome
        if outcome == "refused":
            return EXIT_REFUSED
        if outcome == "failed":
            return EXIT_FAILED
        if outcome == "done" and self.status.regressions:
            return EXIT_REGRESSION
        if outcome == "skipped" and self.stuck:
            return EXIT_STUCK
        return EXIT_OK

    # -- the night --------------------------------------------------------------------

    def run(self) -> int:
        self.check_resumable()
        self.s.nightly_dir.mkdir(parents=True, exist_ok=True)
        self.account_for_interrupted()
        self.mark_running()
        if not (self.refused_for_disk() or self.skipped_for_lock()):
            self.run_playbook()
        if self.status.outcome == "skipped":
            self.check_stuck()
        if self.status.outcome == "done":
            try:
                self.publish_done()
            except Exception as exc:  # the campaign stays; the night is not published
                self.status.outcome = "failed"
                self.status.reason = f"after the campaign: {_describe(exc)}"
                print(f"kvmnetlab-nightly: {self.status.reason}", file=self.err, flush=True)
                self.publish_other()
        else:
            self.publish_other()
        self.prune()
        return self.finish()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, publish.PublishError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _pct(value: Any) -> str:
    return f"{value:+.1f} %" if isinstance(value, int | float) else "n/a"


def run_night(settings: Settings, out: TextIO | None = None, err: TextIO | None = None) -> int:
    return Night(settings, out, err).run()
