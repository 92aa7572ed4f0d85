"""Energy, carbon and FLOPs of a block of code, measured offline.

`track_energy` (a context manager) and `energy_tracked` (a decorator) wrap codecarbon's
`OfflineEmissionsTracker` and return an `EnergyReport`: kWh, kg CO2eq, duration, the CPU / GPU /
RAM breakdown, the grid carbon intensity that was applied, and how codecarbon obtained the CPU
figure. On a machine with readable RAPL counters (bare-metal Linux) the CPU energy is measured;
on a VM without them codecarbon models CPU power from the CPU load and a TDP, and the report says
so (`is_estimate`, `method`). RAM energy is always modelled from the installed memory, never
measured.

Nothing here touches the network. The online `EmissionsTracker` looks up the country from the IP
address and probes cloud metadata addresses; the offline tracker takes the country from its
argument and the carbon intensity from the tables shipped inside codecarbon. Every option that
could make it talk to a server (the CodeCarbon API, an HTTP endpoint, Prometheus, Logfire, the
Electricity Maps API) is passed explicitly switched off, so that neither ~/.codecarbon.config nor a
CODECARBON_* variable can switch it on. Nothing is written to disk unless asked for, and
codecarbon's log messages are captured instead of printed.

`count_flops` counts the floating-point operations of a call with
`torch.utils.flop_counter.FlopCounterMode` (a matmul of (m, k) by (k, n) is 2mkn FLOPs);
`energy_per_token` and `measure_generation_energy` turn a report into energy per generated token.

codecarbon and torch are imported inside the functions, so importing this module is cheap.

References: codecarbon, https://mlco2.github.io/codecarbon/ ; Strubell et al. 2019, "Energy and
Policy Considerations for Deep Learning in NLP", https://arxiv.org/abs/1906.02243 ; Patterson et
al. 2021, "Carbon Emissions and Large Neural Network Training", https://arxiv.org/abs/2104.10350 ;
Luccioni et al. 2023, "Power Hungry Processing: Watts Driving the Cost of AI Deployment?",
https://arxiv.org/abs/2311.16863 .

Used in: modules/05-pretraining/05-compute-costs,
modules/20-advanced-topics/06-energy-efficient-llms, modules/17-capstone (energy-and-carbon-study),
labs/moe-switch-transformer-inference.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_COUNTRY_ISO_CODE = "USA"
"""Country used when none is given. Pass the ISO 3166-1 alpha-3 code of where the code runs."""

DEFAULT_MEASURE_POWER_SECS = 0.5
"""Seconds between two power readings. codecarbon's default (15 s) is longer than most notebook
cells; it also takes a reading when the block starts and when it ends, so short blocks count."""

TRACKING_MODES = ("machine", "process")
JOULES_PER_KWH = 3.6e6

# How codecarbon obtained the CPU figure, by the mode of its CPU hardware object:
# (short name, measured?, what it means).
_CPU_MODES = {
    "intel_rapl": ("rapl", True, "measured by the RAPL energy counters of the CPU"),
    "windows_emi": ("windows_emi", True,
                    "measured by the Windows Energy Meter Interface (RAPL counters)"),
    "intel_power_gadget": ("power_gadget", True, "measured by Intel Power Gadget"),
    "cpu_load": ("cpu_load", False,
                 "a TDP-based estimate: codecarbon found no readable CPU energy counter (on "
                 "Linux: RAPL under /sys/class/powercap/intel-rapl), so it modelled CPU power "
                 "from the CPU load and a TDP of {tdp} W for '{model}'"),
    "constant": ("constant", False,
                 "a constant estimate: codecarbon found no CPU energy counter and no CPU load "
                 "reading, so it took half of a TDP of {tdp} W for '{model}' for the whole run"),
}


@dataclass(repr=False, eq=False)
class EnergyReport:
    """What one tracked block consumed. `track_energy` fills it when the `with` block exits.

    Energies are in kWh (``joules`` converts), powers are means over the block in watts, and
    ``kg_co2eq = kwh * carbon_intensity_g_per_kwh / 1000``. ``kwh`` is the sum of the CPU, GPU
    and RAM parts. ``cpu_method`` is one of ``rapl``, ``windows_emi``, ``power_gadget``,
    ``powermetrics``, ``raspberry`` (measured) or ``cpu_load``, ``constant`` (estimated);
    ``is_estimate`` is True when the CPU figure is not a measurement, and ``method`` says in a
    sentence how it was obtained. ``codecarbon_warnings`` keeps the warnings codecarbon logged
    during the run (they are captured, not printed).

    Reading a field inside the `with` block, before the report is filled, raises RuntimeError.

    Used in: modules/05-pretraining/05-compute-costs,
    modules/20-advanced-topics/06-energy-efficient-llms, modules/17-capstone,
    labs/moe-switch-transformer-inference.
    """

    kwh: float
    kg_co2eq: float
    duration_s: float
    cpu_kwh: float
    gpu_kwh: float
    ram_kwh: float
    cpu_power_w: float
    gpu_power_w: float
    ram_power_w: float
    country_iso_code: str
    country_name: str
    carbon_intensity_g_per_kwh: float
    cpu_method: str
    is_estimate: bool
    method: str
    cpu_model: str
    gpu_model: str | None
    tracking_mode: str
    measure_power_secs: float
    codecarbon_warnings: tuple[str, ...] = field(default=(), repr=False)

    @property
    def done(self) -> bool:
        """True once the tracked block has exited and the fields are filled."""
        return "kwh" in vars(self)

    @property
    def joules(self) -> float:
        """Total energy in joules (1 kWh = 3.6 MJ)."""
        return self.kwh * JOULES_PER_KWH

    @property
    def g_co2eq(self) -> float:
        """Emissions in grams of CO2 equivalent."""
        return self.kg_co2eq * 1000.0

    @property
    def mean_power_w(self) -> float:
        """Mean total power over the block, in watts."""
        return self.joules / self.duration_s

    def summary(self) -> str:
        """One line for a notebook: energy, its parts, CO2, where, and how the CPU was read."""
        cpu = "estimated" if self.is_estimate else "measured"
        return (
            f"{self.joules:.1f} J ({self.kwh:.3g} kWh: CPU {self.cpu_kwh:.3g}, GPU "
            f"{self.gpu_kwh:.3g}, RAM {self.ram_kwh:.3g}) in {self.duration_s:.2f} s, "
            f"{self.g_co2eq:.3g} g CO2eq at {self.carbon_intensity_g_per_kwh:.0f} g/kWh "
            f"({self.country_iso_code}); CPU energy {cpu} ({self.cpu_method})"
        )

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails, i.e. for a field of a report not filled yet.
        if name in type(self).__dataclass_fields__:
            raise RuntimeError(
                f"EnergyReport.{name} is not known yet: track_energy() fills the report when "
                "its `with` block exits"
            )
        raise AttributeError(f"'EnergyReport' object has no attribute {name!r}")

    def __repr__(self) -> str:
        if not self.done:
            return "EnergyReport(<pending: filled when the `with` block exits>)"
        shown = (f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr)
        return f"EnergyReport({', '.join(shown)})"


def known_countries() -> dict[str, str]:
    """ISO 3166-1 alpha-3 codes that codecarbon has grid data for, mapped to country names.

    Used in: modules/20-advanced-topics/06-energy-efficient-llms, modules/17-capstone.
    """
    return {code: mix["country_name"] for code, mix in sorted(_energy_mix().items())}


def grid_carbon_intensity(country_iso_code: str) -> float:
    """The carbon intensity (g CO2eq per kWh) that codecarbon applies to a country's grid.

    Offline, codecarbon uses one yearly figure per country from its bundled
    ``global_energy_mix.json`` (Our World in Data / Ember); regional and live figures need
    options or online services that this module leaves off.

    Used in: modules/05-pretraining/05-compute-costs,
    modules/20-advanced-topics/06-energy-efficient-llms.
    """
    from codecarbon.core.emissions import Emissions

    code = _check_country(country_iso_code)
    return Emissions._global_energy_mix_to_emissions_rate(_energy_mix()[code]).kgs_per_kWh * 1000


@contextmanager
def track_energy(
    country_iso_code: str = DEFAULT_COUNTRY_ISO_CODE,
    *,
    measure_power_secs: float = DEFAULT_MEASURE_POWER_SECS,
    tracking_mode: str = "machine",
    save_to_file: bool = False,
    output_dir: str | os.PathLike[str] | None = None,
    project_name: str = "llm-course",
) -> Iterator[EnergyReport]:
    """Measure the energy and CO2 of a `with` block with codecarbon's offline tracker.

    Example::

        with track_energy("FRA") as report:
            train(model)
        print(report.summary())

    ``country_iso_code`` (ISO 3166-1 alpha-3, see `known_countries`) selects the grid carbon
    intensity. ``tracking_mode="machine"`` counts the whole machine's power (codecarbon's
    default); ``"process"`` attributes to this process its share of the CPU load, which helps on
    a shared machine when the CPU figure is load-based. ``save_to_file=True`` appends a row to
    ``emissions.csv`` in ``output_dir`` (default: the working directory); otherwise nothing is
    written. codecarbon's messages are captured, never printed; an exception raised in the block
    propagates unchanged (the report is still filled), and a failure that codecarbon would only
    have logged is raised as RuntimeError.

    Used in: modules/05-pretraining/05-compute-costs,
    modules/20-advanced-topics/06-energy-efficient-llms, modules/17-capstone,
    labs/moe-switch-transformer-inference.
    """
    settings = _tracker_settings(country_iso_code, measure_power_secs, tracking_mode,
                                 save_to_file, output_dir, project_name)
    report = EnergyReport.__new__(EnergyReport)  # empty: its fields are set when the block exits
    with _quiet_codecarbon() as records, tempfile.TemporaryDirectory() as scratch:
        from codecarbon import OfflineEmissionsTracker

        # Without save_to_file there is no output_dir; some CPU backends (Intel Power Gadget)
        # still write logs into it, so give them a scratch folder, not the working directory.
        settings.setdefault("output_dir", scratch)
        tracker = _checked(records, "set-up", lambda: OfflineEmissionsTracker(**settings))
        try:
            _checked(records, "start", tracker.start)
        except RuntimeError:
            tracker.stop()  # a periodic reading may have started before the failure
            raise
        try:
            yield report
        finally:
            _final_reading(tracker)
            _checked(records, "stop", tracker.stop)
            vars(report).update(vars(_report_from(tracker, records)))


def energy_tracked(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Decorator: the decorated function returns ``(result, EnergyReport)``.

    Use it bare (``@energy_tracked``) or with the keyword arguments of `track_energy`
    (``@energy_tracked(country_iso_code="DEU")``); the options are checked when decorating.

    Used in: modules/05-pretraining/05-compute-costs,
    modules/20-advanced-topics/06-energy-efficient-llms.
    """
    _tracker_settings(**options)  # fail at decoration time, not at the first call

    def decorate(func: Callable[..., Any]) -> Callable[..., tuple[Any, EnergyReport]]:
        if not callable(func):
            raise TypeError(f"energy_tracked decorates a callable, got {type(func).__name__}")

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> tuple[Any, EnergyReport]:
            with track_energy(**options) as report:
                result = func(*args, **kwargs)
            return result, report

        return wrapper

    return decorate if fn is None else decorate(fn)


@dataclass(frozen=True)
class TokenEnergy:
    """Energy and carbon per generated token, and the generation speed.

    ``energy`` is the underlying `EnergyReport`; ``output`` is what the generation function
    returned (`measure_generation_energy` only).

    Used in: modules/20-advanced-topics/06-energy-efficient-llms,
    labs/moe-switch-transformer-inference.
    """

    n_tokens: int
    joules_per_token: float
    kwh_per_1k_tokens: float
    g_co2eq_per_1k_tokens: float
    tokens_per_s: float
    energy: EnergyReport = field(repr=False)
    output: Any = field(default=None, repr=False, compare=False)


def energy_per_token(report: EnergyReport, n_tokens: int) -> TokenEnergy:
    """Divide a finished report by the number of tokens generated while it was tracked.

    Used in: modules/20-advanced-topics/06-energy-efficient-llms,
    labs/moe-switch-transformer-inference.
    """
    if not isinstance(report, EnergyReport):
        raise TypeError(f"report must be an EnergyReport, got {type(report).__name__}")
    if not report.done:
        raise ValueError("report is not filled yet: call energy_per_token after the block exits")
    _check_positive_int(n_tokens, "n_tokens")
    if report.duration_s <= 0:
        raise ValueError(f"report.duration_s must be > 0, got {report.duration_s}")
    return TokenEnergy(
        n_tokens=n_tokens,
        joules_per_token=report.joules / n_tokens,
        kwh_per_1k_tokens=report.kwh / n_tokens * 1000,
        g_co2eq_per_1k_tokens=report.g_co2eq / n_tokens * 1000,
        tokens_per_s=n_tokens / report.duration_s,
        energy=report,
    )


def measure_generation_energy(
    generate_fn: Callable[[], Any], n_tokens: int, **options: Any
) -> TokenEnergy:
    """Run ``generate_fn()`` under `track_energy` and report the energy per generated token.

    ``n_tokens`` is how many tokens the call generates (all sequences of a batch together).
    ``options`` are the keyword arguments of `track_energy`. Call the function once beforehand
    if the first call pays one-off costs (allocation, lazy initialisation) you do not want to
    count. The result's ``output`` holds what ``generate_fn`` returned.

    Used in: modules/20-advanced-topics/06-energy-efficient-llms,
    labs/moe-switch-transformer-inference.
    """
    if not callable(generate_fn):
        raise TypeError(f"generate_fn must be callable, got {type(generate_fn).__name__}")
    _check_positive_int(n_tokens, "n_tokens")
    with track_energy(**options) as report:
        output = generate_fn()
    return dataclasses.replace(energy_per_token(report, n_tokens), output=output)


def count_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """FLOPs of ``fn(*args, **kwargs)`` as counted by `torch.utils.flop_counter.FlopCounterMode`.

    Matrix products are counted as 2 FLOPs per multiply-add (a (m, k) @ (k, n) matmul is
    2mkn); a backward pass inside ``fn`` is counted too. Element-wise work (activations,
    softmax, normalisation) is not counted, nor is causal masking discounted, as in torch's
    counter. On CPU, torch's counter skips the fused attention kernel of
    `scaled_dot_product_attention`; here it is counted with torch's own attention formula.

    Used in: modules/05-pretraining/05-compute-costs,
    modules/20-advanced-topics/06-energy-efficient-llms.
    """
    return _flop_counter(fn, args, kwargs).get_total_flops()


def count_flops_by_module(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, int]:
    """FLOPs of ``fn(*args, **kwargs)`` per module, by dotted name (``"GPT.blocks.0.attn"``).

    A module's count includes its submodules'. FLOPs outside any module are in the total
    (`count_flops`) only.

    Used in: modules/05-pretraining/05-compute-costs.
    """
    counts = _flop_counter(fn, args, kwargs).get_flop_counts()
    return {name: sum(ops.values()) for name, ops in counts.items() if name != "Global"}


# --- internals -------------------------------------------------------------------------------


def _energy_mix() -> dict[str, dict[str, Any]]:
    _import_codecarbon()
    from codecarbon.input import DataSource

    return DataSource().get_global_energy_mix_data()


def _check_country(country_iso_code: Any) -> str:
    if not isinstance(country_iso_code, str):
        raise TypeError(
            "country_iso_code must be a str, an ISO 3166-1 alpha-3 code such as 'FRA', got "
            f"{type(country_iso_code).__name__}"
        )
    code = country_iso_code.strip().upper()
    countries = known_countries()
    if code in countries:
        return code
    by_name = {name.lower(): iso for iso, name in countries.items()}
    hint = ""
    if country_iso_code.strip().lower() in by_name:
        hint = f" Did you mean {by_name[country_iso_code.strip().lower()]!r}?"
    raise ValueError(
        f"unknown country_iso_code {country_iso_code!r}: expected an ISO 3166-1 alpha-3 code "
        f"that codecarbon has grid data for, such as 'FRA', 'USA' or 'DEU' ({len(countries)} "
        f"codes; list them with shared.energy.known_countries()).{hint}"
    )


def _check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def _tracker_settings(
    country_iso_code: str = DEFAULT_COUNTRY_ISO_CODE,
    measure_power_secs: float = DEFAULT_MEASURE_POWER_SECS,
    tracking_mode: str = "machine",
    save_to_file: bool = False,
    output_dir: str | os.PathLike[str] | None = None,
    project_name: str = "llm-course",
) -> dict[str, Any]:
    """Check the options of `track_energy` and return the OfflineEmissionsTracker arguments."""
    code = _check_country(country_iso_code)
    if isinstance(measure_power_secs, bool) or not isinstance(measure_power_secs, (int, float)):
        raise TypeError(
            f"measure_power_secs must be a number, got {type(measure_power_secs).__name__}"
        )
    if not 0 < measure_power_secs < math.inf:
        raise ValueError(
            f"measure_power_secs must be a finite number of seconds > 0, got {measure_power_secs}"
        )
    if tracking_mode not in TRACKING_MODES:
        raise ValueError(f"tracking_mode must be one of {TRACKING_MODES}, got {tracking_mode!r}")
    if not isinstance(save_to_file, bool):
        raise TypeError(f"save_to_file must be a bool, got {type(save_to_file).__name__}")
    if output_dir is not None and not save_to_file:
        raise ValueError("output_dir is only used with save_to_file=True")
    directory = Path(output_dir) if output_dir is not None else Path.cwd()
    if save_to_file and not directory.is_dir():
        raise ValueError(f"output_dir must be an existing directory, got {str(directory)!r}")
    if not isinstance(project_name, str):
        raise TypeError(f"project_name must be a str, got {type(project_name).__name__}")
    saving = dict(output_dir=str(directory), output_file="emissions.csv") if save_to_file else {}

    from codecarbon.output_methods.base_output import OutputMethod

    # Every argument is explicit, so that no config file or CODECARBON_* variable can turn on
    # an output or a lookup that needs the network.
    return dict(
        country_iso_code=code,
        region=None,
        cloud_provider=None,
        cloud_region=None,
        country_2letter_iso_code=None,
        electricitymaps_api_token=None,  # the only online carbon-intensity source
        emissions_endpoint=None,  # HTTP output
        output_methods=[OutputMethod.CSV] if save_to_file else [],  # no API/Prometheus/Logfire
        output_handlers=[],
        logging_logger=None,
        api_call_interval=-1,
        on_csv_write="append",
        project_name=project_name,
        experiment_name="llm-course",
        measure_power_secs=float(measure_power_secs),
        tracking_mode=tracking_mode,
        gpu_ids=None,
        force_cpu_power=None,
        force_ram_power=None,
        force_mode_cpu_load=False,
        force_carbon_intensity_g_co2e_kwh=None,
        rapl_include_dram=False,
        rapl_prefer_psys=False,
        pue=1.0,
        wue=0.0,
        allow_multiple_runs=True,  # no lock file; nested trackers are allowed
        metadata=None,
        logger_preamble="",
        # WARNING, not ERROR: codecarbon reports the exceptions it swallows as warnings, and
        # `_quiet_codecarbon` needs to see them. They are captured, not printed.
        log_level="warning",
        **saving,
    )


class _CodecarbonLogCapture(logging.Filter):
    """Hands each codecarbon log record to every running tracker's list; lets none through.

    One filter serves all trackers, so that nested `track_energy` blocks each see the records
    logged while they run (a logger stops at the first filter that rejects a record).
    """

    def __init__(self) -> None:
        super().__init__()
        self.active: list[list[logging.LogRecord]] = []

    def filter(self, record: logging.LogRecord) -> bool:
        for records in self.active:
            records.append(record)
        return False


_LOG_CAPTURE = _CodecarbonLogCapture()


def _import_codecarbon() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # import-time warnings of codecarbon's dependencies
        import codecarbon  # noqa: F401 - also sets up the "codecarbon" logger


@contextmanager
def _quiet_codecarbon() -> Iterator[list[logging.LogRecord]]:
    """Capture codecarbon's log records and ignore its warnings until the block exits.

    The logger level and the warnings filters are restored afterwards. The user's own warnings
    inside the block still show: only those raised from codecarbon's modules are ignored.
    """
    _import_codecarbon()
    logger = logging.getLogger("codecarbon")
    level = logger.level
    records: list[logging.LogRecord] = []
    _LOG_CAPTURE.active.append(records)
    logger.addFilter(_LOG_CAPTURE)  # no-op when an enclosing block already added it
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"codecarbon(\.|$)")
            yield records
    finally:
        _LOG_CAPTURE.active = [active for active in _LOG_CAPTURE.active if active is not records]
        if not _LOG_CAPTURE.active:
            logger.removeFilter(_LOG_CAPTURE)
        logger.setLevel(level)  # the tracker sets the level of the shared logger


def _checked(records: list[logging.LogRecord], stage: str, call: Callable[[], Any]) -> Any:
    """Run a codecarbon call and raise any exception that it caught and only logged.

    codecarbon wraps its tracker's constructor, `start` and `stop` in a `suppress` decorator
    that logs exceptions as warnings and carries on. The records of this call are the ones
    logged from this thread since it began (other trackers' readings run in other threads).
    """
    first = len(records)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = call()
    thread = threading.get_ident()
    for record in records[first:]:
        error = record.exc_info[1] if record.exc_info else None
        if record.thread == thread and record.funcName == "suppress" and error is not None:
            raise RuntimeError(
                f"codecarbon failed during {stage}: {type(error).__name__}: {error}"
            ) from error
    return result


def _final_reading(tracker: Any, timeout_s: float = 10.0) -> None:
    """Stop the periodic readings, wait for one in progress, then take the last reading.

    codecarbon's readings run in `threading.Timer` threads, and `stop()` neither waits for one
    in progress (which could then log after we stop capturing, or race with the final reading)
    nor reads again when the last reading is under 50 ms old, which undercounts short blocks.
    """
    schedulers = (tracker._scheduler, tracker._scheduler_monitor_power)
    for scheduler in schedulers:
        scheduler.stop()
    for thread in threading.enumerate():
        owner = getattr(getattr(thread, "function", None), "__self__", None)
        if isinstance(thread, threading.Timer) and owner is not None and owner in schedulers:
            thread.join(timeout_s)
    tracker._measure_power_and_energy()


def _cpu_method(tracker: Any) -> tuple[str, bool, str]:
    """(short name, is_estimate, sentence) for how codecarbon obtained the CPU figure.

    codecarbon (3.3) keeps this on its hardware objects only (`tracker._hardware`,
    `CPU._mode`); it has no public attribute for it.
    """
    for hardware in tracker._hardware:
        kind = type(hardware).__name__
        if kind in ("AppleSiliconChip", "Raspberry") and hardware.chip_part == "CPU":
            name = "powermetrics" if kind == "AppleSiliconChip" else "raspberry"
            source = "Apple powermetrics" if name == "powermetrics" else "the Raspberry Pi PMIC"
            return name, False, f"The CPU figure is measured by {source}."
        if kind == "CPU":
            mode = hardware._mode
            if mode not in _CPU_MODES:
                return mode, True, (f"The CPU figure comes from codecarbon's '{mode}' mode, "
                                    "which this module does not know; treat it as an estimate.")
            name, measured, text = _CPU_MODES[mode]
            text = text.format(tdp=hardware._tdp, model=hardware._model)
            if getattr(hardware, "_is_generic_tdp", False):
                text += " (codecarbon's default TDP: the CPU model is not in its table)"
            return name, not measured, f"The CPU figure is {text}."
    raise RuntimeError(f"codecarbon tracked no CPU (hardware: {tracker._hardware!r})")


def _report_from(tracker: Any, records: list[logging.LogRecord]) -> EnergyReport:
    data = getattr(tracker, "final_emissions_data", None)
    if data is None:
        raise RuntimeError("codecarbon produced no emissions data: the tracker did not run")
    cpu_method, is_estimate, method = _cpu_method(tracker)
    return EnergyReport(
        kwh=data.energy_consumed,
        kg_co2eq=data.emissions,
        duration_s=data.duration,
        cpu_kwh=data.cpu_energy,
        gpu_kwh=data.gpu_energy,
        ram_kwh=data.ram_energy,
        cpu_power_w=data.cpu_power,
        gpu_power_w=data.gpu_power,
        ram_power_w=data.ram_power,
        country_iso_code=data.country_iso_code,
        country_name=data.country_name,
        carbon_intensity_g_per_kwh=grid_carbon_intensity(data.country_iso_code),
        cpu_method=cpu_method,
        is_estimate=is_estimate,
        method=method,
        cpu_model=data.cpu_model,
        gpu_model=data.gpu_model or None,
        tracking_mode=data.tracking_mode,
        measure_power_secs=tracker._measure_power_secs,
        codecarbon_warnings=tuple(r.getMessage() for r in records if r.levelno >= logging.WARNING),
    )


def _flop_counter(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False, custom_mapping=_cpu_attention_formulas()) as counter:
        fn(*args, **kwargs)
    return counter


@functools.lru_cache(maxsize=1)
def _cpu_attention_formulas() -> dict[Any, Callable[..., int]]:
    """FLOP formulas for the CPU fused attention kernels, which torch's counter does not know.

    They take the same leading (query, key, value) arguments as the CUDA flash kernel, so
    torch's own attention formulas apply. Kernels torch already counts are left to torch.
    """
    import torch
    from torch.utils import flop_counter

    def forward(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any,
                out_shape: Any = None, **kwargs: Any) -> int:
        return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)

    def backward(grad_out_shape: Any, query_shape: Any, key_shape: Any, value_shape: Any,
                 *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape,
                                                     value_shape)

    formulas = {}
    for name, formula in (("_scaled_dot_product_flash_attention_for_cpu", forward),
                          ("_scaled_dot_product_flash_attention_for_cpu_backward", backward)):
        op = getattr(torch.ops.aten, name, None)
        if op is not None and op not in flop_counter.flop_registry:
            formulas[op] = formula
    return formulas
