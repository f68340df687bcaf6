"""The Features tab's model work: load an SAE (from a folder, the hub cache or a download,
with progress and Cancel), read the features of the run on screen, a feature's card, and
scan a corpus for each feature's top contexts; feature switches rerun the prompt. Results
are applied through the pure transitions of state/features.py, which drop those that no
longer match the prompt, model, switches or SAE."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject

from explorer.session.jobs.kinds import reason
from explorer.session.worker import JobContext
from explorer.state import features as fs
from gpt_core.sae import FeatureSwitches, feature_card, features, load_sae, scan_corpus


class FeatureJobs(QObject):
    def __init__(self, session):
        super().__init__(session)
        self.session = session
        self.scan_cache = fs.SCAN_CACHE  # where scans are kept and resumed (tests: a tmp folder)
        # A headless session reads the features of every run; the window reads them while
        # the Features tab is shown (the tab says so), which spares a forward per run.
        self.shown = True
        session.traceChanged.connect(self.request)
        session.featuresChanged.connect(self.request)

    def set_shown(self, shown: bool) -> None:
        """Whether the features are on screen: when they come into view, read them."""
        self.shown = shown
        if shown:
            self.request()

    # ------------------------------------------------------------------ loading
    def load(self, source: str) -> None:
        """Load the SAE at `source` (a folder or REPO:FOLDER) for the model in use; the SAE
        loaded before stays until this one is in, and stays if this one fails."""
        session = self.session
        if session.model is None:
            session.report("info", "The model is still loading; load the SAE after it.")
            return
        config = session.config

        def job(ctx: JobContext):
            return load_sae(source, config, progress=ctx.report, cancel=ctx.should_stop)

        def done(sae) -> None:
            session.update(fs.in_app, fs.with_sae, sae, session.config)
            loaded = session.state.features.loaded
            session.report(
                "status",
                f"SAE loaded: {sae.source} · {sae.hook_name} · {sae.d_sae:,} features "
                f"({sae.architecture})",
            )
            for text in (*sae.warnings, loaded.misfit):
                if text:
                    session.report("warning", f"{text[0].upper()}{text[1:]}.")

        def failed(exc: BaseException, formatted: str) -> None:
            kept = " The SAE loaded before stays." if session.state.features.loaded else ""
            session.report("error", f"Could not load the SAE {source}: {reason(exc)}.{kept}")

        def stopped() -> None:
            if not session.runner.has_job("sae_load"):
                session.report("info", "Loading the SAE cancelled.")

        label = f"Loading the SAE {source}…"
        session.runner.submit("sae_load", job, done, failed, session.progress.emit, label, stopped)

    # ------------------------------------------------------------------ the run on screen
    def request(self) -> None:
        """Read the features of the run on screen (and the open card) if the state lacks
        them and no job reads them already."""
        session = self.session
        state, model = session.state, session.model
        key = fs.current_key(state)
        if key is None or model is None or not self.shown:
            return
        result = state.features.result
        if (result is None or result.key != key) and session.runner.in_flight("features") != key:
            self._read_features(key)
        feature = state.features.feature
        if feature is not None and state.features.card is None:
            self._read_card(feature)

    def _read_features(self, key: fs.FeatureKey) -> None:
        session, model = self.session, self.session.model
        sae = session.state.features.usable
        run_key = key.run
        switches = run_key.features.switches if run_key.features else FeatureSwitches()

        def job(ctx: JobContext) -> fs.FeatureResult:
            start = time.perf_counter()
            run = features(
                model,
                list(run_key.token_ids),
                sae,
                interventions=run_key.interventions,
                switches=switches,
            )
            return fs.FeatureResult(key, run, time.perf_counter() - start)

        def done(result: fs.FeatureResult) -> None:
            session.update(fs.apply_result, result)

        session.submit("features", job, done, tag=key)

    # ------------------------------------------------------------------ cards
    def open_card(self, feature: int | None) -> None:
        """Open feature `feature`'s card (None closes it)."""
        sae = self.session.state.features.usable
        if feature is not None and (sae is None or not 0 <= feature < sae.d_sae):
            return
        self.session.update(fs.in_app, fs.select_feature, feature)
        if feature is not None and self.session.state.features.card is None:
            self._read_card(feature)

    def _read_card(self, feature: int) -> None:
        session, model = self.session, self.session.model
        state = session.state
        sae, sae_serial = state.features.usable, state.features.loaded.serial
        model_serial = state.model.serial
        tag = (sae_serial, model_serial, feature)
        if session.runner.in_flight("feature_card") == tag:
            return  # already on its way

        def job(ctx: JobContext) -> fs.CardRun:
            return fs.CardRun(sae_serial, model_serial, feature_card(model, sae, feature))

        def done(card: fs.CardRun) -> None:
            session.update(fs.apply_card, card)

        session.submit("feature_card", job, done, tag=tag)

    # ------------------------------------------------------------------ switches
    def set_switches(self, switches: FeatureSwitches) -> None:
        """Feature switches at the SAE's site; the prompt on screen runs again with them."""
        session = self.session
        sae = session.state.features.usable
        if sae is None and not switches.is_empty:
            session.report("info", "Load an SAE that fits the model first.")
            return
        if switches == session.state.features.switches:
            return
        session.update(fs.in_app, fs.with_switches, switches)
        session.rerun()

    def toggle_ablate(self, feature: int) -> None:
        self.set_switches(self.session.state.features.switches.toggle_ablate(feature))

    def steer(self, feature: int, alpha: float | None) -> None:
        """Push `feature` by α at every position (α 0 or None: stop pushing it)."""
        self.set_switches(self.session.state.features.switches.with_steer(feature, alpha))

    # ------------------------------------------------------------------ corpus scan
    def scan(self, corpus: str) -> None:
        """Each feature's top windows in `corpus` (a text file or a folder of .txt); the scan
        is cached and resumed where a cancelled one stopped."""
        session, model = self.session, self.session.model
        state = session.state
        sae = state.features.usable
        if sae is None or model is None:
            session.report("info", "Load an SAE that fits the model first.")
            return
        sae_serial, model_serial = state.features.loaded.serial, state.model.serial
        cache = self.scan_cache

        def job(ctx: JobContext) -> fs.ScanRun:
            def progress(done: int, total: int, rate: float) -> None:
                ctx.report(
                    done / max(total, 1),
                    f"Scanning {corpus}: {done:,} / {total:,} tokens · {rate:,.0f} tokens/s",
                )

            result = scan_corpus(
                model, sae, corpus, cache_dir=cache, progress=progress,
                should_stop=ctx.should_stop,
            )  # fmt: skip
            return fs.ScanRun(sae_serial, model_serial, corpus, result)

        def done(scan: fs.ScanRun) -> None:
            session.update(fs.apply_scan, scan)
            result = scan.result
            how = "reloaded from the cache" if result.from_cache else f"{result.seconds:.1f} s"
            session.report("status", f"Scanned {result.tokens:,} tokens of {corpus} · {how}")

        def stopped() -> None:
            if not session.runner.has_job("feature_scan"):
                session.report("info", "Scan cancelled; scanning the same corpus again resumes it.")

        session.submit("feature_scan", job, done, session.progress.emit, stopped)
