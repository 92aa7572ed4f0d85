"""`shared.energy`: the offline tracker (positive figures, method vs this machine's RAPL, CO2 =
energy x codecarbon's grid intensity, no files, no output, no network), FLOPs against closed
forms, and the per-token arithmetic."""

from __future__ import annotations

import csv
import importlib.resources
import json
import logging
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shared.energy import (
    EnergyReport,
    TokenEnergy,
    count_flops,
    count_flops_by_module,
    energy_per_token,
    energy_tracked,
    grid_carbon_intensity,
    known_countries,
    measure_generation_energy,
    track_energy,
)
from shared.layers import FeedForward


def busy_cpu(seconds: float = 0.3) -> float:
    """A short CPU workload: matmuls for about `seconds`."""
    torch.manual_seed(0)
    a = torch.randn(128, 128)
    total = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        total += float((a @ a).sum())
    return total


def rapl_counters_readable() -> bool:
    """What codecarbon looks for on Linux: a readable RAPL energy counter."""
    for counter in Path("/sys/class/powercap").glob("intel-rapl*/energy_uj"):
        try:
            counter.read_text()
        except OSError:
            continue
        return True
    return False


def codecarbon_energy_mix() -> dict[str, Any]:
    """codecarbon's bundled grid data, read from the file itself rather than through its code."""
    path = importlib.resources.files("codecarbon") / "data/private_infra/global_energy_mix.json"
    return json.loads(path.read_text())


@pytest.fixture
def fresh_codecarbon() -> None:
    """Forget codecarbon's per-process hardware detection, so the test runs it again."""
    from codecarbon.core.hardware_cache import clear_cache

    clear_cache()


# --- the tracker -------------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RAPL detection is Linux-only")
def test_short_cpu_block_positive_figures_and_honest_method(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
    fresh_codecarbon: None,
) -> None:
    monkeypatch.chdir(tmp_path)
    with track_energy("FRA", measure_power_secs=0.5) as report:
        busy_cpu(0.3)
    assert report.done
    assert report.kwh > 0 and report.kg_co2eq > 0 and report.duration_s >= 0.3
    assert report.kwh == pytest.approx(report.cpu_kwh + report.gpu_kwh + report.ram_kwh, rel=1e-9)
    assert report.joules == pytest.approx(report.kwh * 3.6e6)
    # Sensible, not just positive: a mean power between 0.1 W and 2 kW.
    assert 0.1 < report.mean_power_w < 2000
    assert report.country_iso_code == "FRA" and report.country_name == "France"
    if rapl_counters_readable():
        assert (report.cpu_method, report.is_estimate) == ("rapl", False)
        assert "measured" in report.method
    else:
        assert report.is_estimate
        assert report.cpu_method in ("cpu_load", "constant")
        assert "estimate" in report.method and "TDP" in report.method
    assert report.cpu_method in report.summary()
    # Nothing written to the working directory, nothing printed (hardware detection included).
    assert list(tmp_path.iterdir()) == []
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_very_short_block_is_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Shorter than codecarbon's 50 ms "stale" threshold: the final reading must still cover it.
    monkeypatch.chdir(tmp_path)
    with track_energy("FRA") as short:
        busy_cpu(0.01)
    with track_energy("FRA") as longer:
        busy_cpu(0.3)
    assert short.kwh > 0

    def cpu_and_ram_watts(report: EnergyReport) -> float:
        # GPU counters (NVML) tick too coarsely for 10 ms; CPU and RAM are read at the edges.
        return (report.cpu_kwh + report.ram_kwh) * 3.6e6 / report.duration_s

    # Same machine, same kind of work: mean powers agree within a factor of 3.
    ratio = cpu_and_ram_watts(short) / cpu_and_ram_watts(longer)
    assert 1 / 3 < ratio < 3


@pytest.mark.parametrize("country", ["FRA", "POL", "USA"])
def test_co2_is_energy_times_codecarbon_grid_intensity(
    country: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    g_per_kwh = codecarbon_energy_mix()[country]["carbon_intensity"]
    with track_energy(country) as report:
        busy_cpu(0.1)
    assert report.carbon_intensity_g_per_kwh == pytest.approx(g_per_kwh, rel=1e-9)
    assert grid_carbon_intensity(country) == pytest.approx(g_per_kwh, rel=1e-9)
    assert report.kg_co2eq == pytest.approx(report.kwh * g_per_kwh / 1000, rel=1e-9)
    assert report.g_co2eq == pytest.approx(report.kg_co2eq * 1000)


def test_decorator_returns_result_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    @energy_tracked
    def square(x: int) -> int:
        """Square x."""
        busy_cpu(0.05)
        return x * x

    @energy_tracked(country_iso_code="DEU", measure_power_secs=1.0)
    def add(x: int, y: int = 0) -> int:
        return x + y

    result, report = square(7)
    assert result == 49 and isinstance(report, EnergyReport) and report.kwh > 0
    assert square.__name__ == "square" and square.__doc__ == "Square x."
    result, report = add(2, y=3)
    assert result == 5
    assert report.country_iso_code == "DEU" and report.measure_power_secs == 1.0
    assert list(tmp_path.iterdir()) == []


def test_save_to_file_writes_csv_only_where_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd, out_dir = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    out_dir.mkdir()
    monkeypatch.chdir(cwd)
    with track_energy("FRA", save_to_file=True, output_dir=out_dir) as report:
        busy_cpu(0.05)
    assert list(cwd.iterdir()) == []
    with open(out_dir / "emissions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    assert float(rows[0]["energy_consumed"]) == pytest.approx(report.kwh)
    assert float(rows[0]["emissions"]) == pytest.approx(report.kg_co2eq)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_energy_is_tracked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    a = torch.randn(2048, 2048, device="cuda")
    with track_energy("FRA") as report:
        deadline = time.perf_counter() + 0.5
        while time.perf_counter() < deadline:
            a = torch.tanh(a @ a)
        torch.cuda.synchronize()
    assert report.gpu_kwh > 0 and report.gpu_model
    assert report.kwh == pytest.approx(report.cpu_kwh + report.gpu_kwh + report.ram_kwh, rel=1e-9)


def test_exception_in_block_propagates_and_report_is_still_filled() -> None:
    with pytest.raises(ZeroDivisionError):
        with track_energy("FRA") as report:
            busy_cpu(0.05)
            1 / 0  # noqa: B018
    assert report.done and report.kwh > 0


def test_pending_report_refuses_to_be_read() -> None:
    with track_energy("FRA") as report:
        assert not report.done
        assert "pending" in repr(report)
        with pytest.raises(RuntimeError, match="fills the report when its `with` block exits"):
            report.kwh  # noqa: B018
        with pytest.raises(ValueError, match="not filled yet"):
            energy_per_token(report, 10)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        report.nope  # noqa: B018
    assert "kwh=" in repr(report)


def test_codecarbon_failure_is_raised_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # codecarbon's start() catches every exception and only logs it; we must not hide it.
    from codecarbon.emissions_tracker import BaseEmissionsTracker

    def broken(self: Any) -> None:
        raise OSError("hardware probe failed")

    monkeypatch.setattr(BaseEmissionsTracker, "_ensure_hardware_ready", broken)
    ran = []
    with pytest.raises(RuntimeError, match="codecarbon failed during start") as info:
        with track_energy("FRA"):
            ran.append(True)
    assert isinstance(info.value.__cause__, OSError) and ran == []


def test_nested_trackers_each_see_their_own_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    from codecarbon.emissions_tracker import BaseEmissionsTracker

    def broken(self: Any) -> None:
        raise OSError("hardware probe failed")

    with track_energy("FRA") as outer:
        with track_energy("DEU") as inner:
            busy_cpu(0.05)
        with monkeypatch.context() as patch:
            patch.setattr(BaseEmissionsTracker, "_ensure_hardware_ready", broken)
            with pytest.raises(RuntimeError, match="codecarbon failed during start"):
                with track_energy("FRA"):
                    pass
    assert inner.kwh > 0 and outer.kwh > inner.kwh
    assert outer.duration_s > inner.duration_s
    assert logging.getLogger("codecarbon").filters == []


def test_logger_restored_and_own_warnings_still_shown() -> None:
    logger = logging.getLogger("codecarbon")
    logger.setLevel(logging.INFO)
    filters = list(logger.filters)
    with pytest.warns(UserWarning, match="the block's own warning"):
        with track_energy("FRA"):
            warnings.warn("the block's own warning", UserWarning, stacklevel=1)
    assert logger.level == logging.INFO and logger.filters == filters


def test_no_network_traffic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_codecarbon: None
) -> None:
    attempts: list[str] = []

    def is_loopback(host: Any) -> bool:
        return host in (None, "localhost", "127.0.0.1", "::1") or str(host).startswith("127.")

    def guard(host: Any, what: str) -> None:
        if not is_loopback(host):
            attempts.append(f"{what} {host!r}")
            raise OSError(f"test forbids network access: {what} {host!r}")

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo, real_create = socket.getaddrinfo, socket.create_connection

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            guard(address[0], "connect")
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            guard(address[0], "connect_ex")
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        guard(host, "getaddrinfo")
        return real_getaddrinfo(host, *args, **kwargs)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
        guard(address[0], "create_connection")
        return real_create(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)

    # The guard itself works: an outside address is refused and recorded.
    with pytest.raises(OSError, match="forbids network"):
        socket.create_connection(("192.0.2.1", 80), timeout=0.1)
    assert attempts == ["create_connection '192.0.2.1'"]
    attempts.clear()

    # Settings that would send data out, had they been left to codecarbon's config lookup
    # (environment variables, and a .codecarbon.config in the working directory).
    monkeypatch.setenv("CODECARBON_OUTPUT_METHODS", "csv,api,prometheus,logfire")
    monkeypatch.setenv("CODECARBON_SAVE_TO_API", "true")
    monkeypatch.setenv("CODECARBON_EMISSIONS_ENDPOINT", "http://192.0.2.1/emissions")
    monkeypatch.setenv("CODECARBON_ELECTRICITYMAPS_API_TOKEN", "not-a-token")
    monkeypatch.setenv("CODECARBON_API_CALL_INTERVAL", "1")
    (tmp_path / ".codecarbon.config").write_text(
        "[codecarbon]\ncloud_provider = gcp\ncloud_region = europe-west1\n"
        "prometheus_url = http://192.0.2.1:9091\n"
    )
    # codecarbon catches network errors itself, so check the record, not only for a raise.
    monkeypatch.chdir(tmp_path)
    with track_energy("USA", save_to_file=True) as report:  # hardware detection included
        busy_cpu(0.6)  # long enough for the periodic readings to run
    measured = measure_generation_energy(lambda: busy_cpu(0.05), 8, country_iso_code="DEU")
    assert report.kwh > 0 and measured.energy.kwh > 0
    assert attempts == []


# --- bad input ---------------------------------------------------------------------------------


def test_unknown_country_raises_with_what_was_expected() -> None:
    for bad in ("XYZ", "FR", ""):
        with pytest.raises(ValueError, match="ISO 3166-1 alpha-3") as info:
            with track_energy(bad):
                pass
        assert "'FRA'" in str(info.value) and "known_countries()" in str(info.value)
    with pytest.raises(ValueError, match="Did you mean 'FRA'"):
        grid_carbon_intensity("France")
    with pytest.raises(TypeError, match="must be a str"):
        grid_carbon_intensity(250)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ISO 3166-1 alpha-3"):
        energy_tracked(country_iso_code="ZZZ")  # checked when decorating
    assert grid_carbon_intensity("fra") == grid_carbon_intensity("FRA")


def test_known_countries_are_codecarbon_data() -> None:
    countries = known_countries()
    mix = codecarbon_energy_mix()
    assert countries == {code: mix[code]["country_name"] for code in sorted(mix)}
    assert countries["FRA"] == "France" and countries["DEU"] == "Germany" and "USA" in countries


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"measure_power_secs": 0}, ValueError, "measure_power_secs must be a finite"),
        ({"measure_power_secs": float("inf")}, ValueError, "measure_power_secs must be a finite"),
        ({"measure_power_secs": "1"}, TypeError, "measure_power_secs must be a number"),
        ({"tracking_mode": "gpu"}, ValueError, "tracking_mode must be one of"),
        ({"save_to_file": "yes"}, TypeError, "save_to_file must be a bool"),
        ({"output_dir": "."}, ValueError, "only used with save_to_file=True"),
        ({"save_to_file": True, "output_dir": "/no/such/dir"}, ValueError, "existing directory"),
        ({"project_name": 3}, TypeError, "project_name must be a str"),
    ],
)
def test_bad_tracker_options(options: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        with track_energy(**options):
            pass
    with pytest.raises(error, match=match):
        energy_tracked(**options)
    with pytest.raises(TypeError, match="unexpected keyword"):
        energy_tracked(country="FRA")
    with pytest.raises(TypeError, match="decorates a callable"):
        energy_tracked(5)


# --- energy per token --------------------------------------------------------------------------


def make_report(kwh: float, kg_co2eq: float, duration_s: float) -> EnergyReport:
    return EnergyReport(
        kwh=kwh, kg_co2eq=kg_co2eq, duration_s=duration_s, cpu_kwh=kwh, gpu_kwh=0.0, ram_kwh=0.0,
        cpu_power_w=0.0, gpu_power_w=0.0, ram_power_w=0.0, country_iso_code="FRA",
        country_name="France", carbon_intensity_g_per_kwh=kg_co2eq / kwh * 1000,
        cpu_method="cpu_load", is_estimate=True, method="test", cpu_model="test",
        gpu_model=None, tracking_mode="machine", measure_power_secs=0.5,
    )


def test_energy_per_token_arithmetic() -> None:
    report = make_report(kwh=0.002, kg_co2eq=0.001, duration_s=4.0)
    per_token = energy_per_token(report, 500)
    assert per_token.joules_per_token == pytest.approx(0.002 * 3.6e6 / 500)  # 14.4 J
    assert per_token.kwh_per_1k_tokens == pytest.approx(0.004)
    assert per_token.g_co2eq_per_1k_tokens == pytest.approx(2.0)
    assert per_token.tokens_per_s == pytest.approx(125.0)
    assert per_token.energy is report and per_token.n_tokens == 500


@pytest.mark.parametrize(
    ("n_tokens", "error"), [(0, ValueError), (-3, ValueError), (1.5, TypeError), (True, TypeError)]
)
def test_energy_per_token_bad_input(n_tokens: Any, error: type[Exception]) -> None:
    report = make_report(kwh=0.002, kg_co2eq=0.001, duration_s=4.0)
    with pytest.raises(error, match="n_tokens"):
        energy_per_token(report, n_tokens)
    called = []
    with pytest.raises(error, match="n_tokens"):
        measure_generation_energy(lambda: called.append(1), n_tokens)
    assert called == []  # checked before anything runs
    with pytest.raises(TypeError, match="must be an EnergyReport"):
        energy_per_token({"kwh": 1.0}, 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duration_s must be > 0"):
        energy_per_token(make_report(kwh=0.002, kg_co2eq=0.001, duration_s=0.0), 10)
    with pytest.raises(TypeError, match="generate_fn must be callable"):
        measure_generation_energy("generate", 10)  # type: ignore[arg-type]


def test_measure_generation_energy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    n_tokens = 32

    def generate() -> torch.Tensor:
        busy_cpu(0.1)
        return torch.arange(n_tokens)

    result = measure_generation_energy(generate, n_tokens, country_iso_code="FRA")
    assert isinstance(result, TokenEnergy)
    assert torch.equal(result.output, torch.arange(n_tokens))
    report = result.energy
    assert report.kwh > 0
    assert result.joules_per_token * n_tokens == pytest.approx(report.joules)
    assert result.kwh_per_1k_tokens == pytest.approx(report.kwh / n_tokens * 1000)
    assert result.tokens_per_s == pytest.approx(n_tokens / report.duration_s)


# --- FLOPs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("m", "k", "n"), [(1, 1, 1), (3, 5, 7), (64, 32, 16)])
def test_matmul_flops_closed_form(m: int, k: int, n: int) -> None:
    a, b = torch.randn(m, k), torch.randn(k, n)
    assert count_flops(torch.matmul, a, b) == 2 * m * k * n
    batched = torch.randn(4, m, k), torch.randn(4, k, n)
    assert count_flops(torch.bmm, *batched) == 4 * 2 * m * k * n


def test_linear_flops_forward_and_backward() -> None:
    torch.manual_seed(0)
    batch, d_in, d_out = 6, 10, 20
    layer = nn.Linear(d_in, d_out)
    x = torch.randn(batch, d_in, requires_grad=True)
    forward = 2 * batch * d_in * d_out
    assert count_flops(layer, x) == forward
    # Backward: the gradient of the input and of the weight, one matmul of the same size each.
    assert count_flops(lambda: layer(x).sum().backward()) == 3 * forward


def test_feed_forward_flops_match_its_own_formula() -> None:
    torch.manual_seed(0)
    for activation in ("gelu", "swiglu"):
        ffn = FeedForward(16, 64, activation)
        x = torch.randn(2, 5, 16)
        assert count_flops(ffn, x) == ffn.flops_per_token() * 2 * 5


class TinyAttentionBlock(nn.Module):
    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


def test_attention_block_flops_closed_form() -> None:
    torch.manual_seed(0)
    b, t, d, h = 2, 12, 32, 4
    block = TinyAttentionBlock(d, h)
    x = torch.randn(b, t, d)
    projections = 2 * (b * t) * d * (3 * d) + 2 * (b * t) * d * d
    attention = 2 * 2 * b * h * t * t * (d // h)  # Q K^T and A V; causal mask not discounted
    assert count_flops(block, x) == projections + attention
    by_module = count_flops_by_module(block, x)
    assert by_module["TinyAttentionBlock.qkv"] == 2 * (b * t) * d * (3 * d)
    assert by_module["TinyAttentionBlock.proj"] == 2 * (b * t) * d * d
    assert by_module["TinyAttentionBlock"] == projections + attention
    # Backward of attention: five products of the same size as Q K^T (torch's formula).
    q = torch.randn(b, h, t, d // h, requires_grad=True)
    total = count_flops(lambda: F.scaled_dot_product_attention(q, q, q).sum().backward())
    assert total == (2 + 5) * 2 * b * h * t * t * (d // h)


def test_flops_by_module_nesting() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    x = torch.randn(3, 8)
    by_module = count_flops_by_module(model, x)
    assert by_module == {
        "Sequential": 2 * 3 * (8 * 16 + 16 * 4),
        "Sequential.0": 2 * 3 * 8 * 16,
        "Sequential.2": 2 * 3 * 16 * 4,
    }
    assert count_flops(model, x) == by_module["Sequential"]
    with pytest.raises(TypeError, match="fn must be callable"):
        count_flops("model", x)
