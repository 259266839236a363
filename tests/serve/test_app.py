"""The JSON API and /metrics of `joulebench serve`, against a real uvicorn and real results."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from joulebench.measure.timeline import COLUMNS
from joulebench.tracker import ProgressTracker
from tests.conftest import wait_for
from tests.serve.conftest import TOKEN, Server

PATHS = [
    "/",
    "/suites/demo",
    "/experiments/0001",
    "/api/suites",
    "/api/suites/demo",
    "/api/experiments/0001",
    "/api/experiments/0001/timeline",
    "/api/experiments/0001/files/0001_1_experiment_setup.json",
    "/metrics",
    "/static/app.js",
]


def test_suites_json_has_status_counts_progress_and_eta(served: Server) -> None:
    status, body = served.json("/api/suites")
    assert status == 200
    assert body["tracker_error"] is None and body["failures"] == []
    (demo,) = body["suites"]
    assert (demo["name"], demo["done"], demo["total"]) == ("demo", 8, 8)
    assert demo["counts"] == {"done": 8}
    assert [(c["cycle"], c["done"], c["total"]) for c in demo["cycles"]] == [(1, 4, 4), (2, 4, 4)]
    assert demo["eta_s"] == 0.0 and demo["pace_per_hour"] > 0
    assert 0 <= demo["flagged"] <= 8


def test_suite_json_has_the_results_table_and_the_reports_plot_data(served: Server) -> None:
    status, body = served.json("/api/suites/demo")
    assert status == 200
    assert body["status"]["done"] == 8
    assert sorted(r["experiment_id"] for r in body["results"]) == [f"{i:04d}" for i in range(1, 9)]
    row = body["results"][0]
    assert set(row) >= {
        "config_name",
        "cycle",
        "experiment_id",
        "energy_per_output_token_j",
        "dynamic_energy_per_output_token_j",
        "throughput_output_tokens_per_s",
        "request_latency_p95_s",
        "quality_flags",
        "status",
    }
    assert row["energy_per_output_token_j"] > 0 and isinstance(row["cycle"], int)
    assert body["variables"]  # the configs' varied fields, as `report` finds them
    assert isinstance(body["plots"], list)
    for plot in body["plots"]:
        assert {"title", "x_label", "y_label", "series"} <= set(plot)


def test_experiment_json_has_show_figures_files_and_a_timeline(served: Server) -> None:
    status, body = served.json("/api/experiments/1")  # "1" finds "0001", as `show` does
    assert status == 200
    assert body["experiment_id"] == "0001" and body["suite"] == "demo"
    labels = [label for label, _ in body["figures"]]
    assert "energy per output token" in labels and "git commit" in labels
    assert "0001_7_global_energy_results.json" in body["files"]
    assert body["has_timeline"] and "0001_9_power_timeline.csv" in body["files"]
    status, timeline = served.json("/api/experiments/0001/timeline")
    assert status == 200
    rows = timeline["rows"]
    assert set(rows[0]) == set(COLUMNS)
    kinds = {r["kind"] for r in rows}
    assert {"sample", "window_start", "window_end", "total"} <= kinds
    samples = [r for r in rows if r["kind"] == "sample"]
    assert {r["source"] for r in samples} == {"codecarbon"}
    assert all(r["energy_j"] is not None for r in samples)


def test_without_the_right_token_every_path_is_401_and_holds_no_data(served: Server) -> None:
    for path in PATHS:
        for token in (None, "wrong-token-0123456789"):
            status, _, body = served.get(path, token=token)
            assert status == 401, path
            assert b"demo" not in body and b"0001" not in body
    assert served.get("/api/suites?token=" + TOKEN, token=None)[0] == 200


def test_the_token_in_the_url_sets_a_cookie_the_pages_requests_then_carry(served: Server) -> None:
    status, headers, _ = served.get(f"/?token={TOKEN}", token=None)
    assert status == 200
    cookie = headers["set-cookie"].split(";")[0]
    assert "HttpOnly" in headers["set-cookie"]
    status, _, body = served.get("/api/suites", token=None, headers={"Cookie": cookie})
    assert status == 200 and b'"demo"' in body


@pytest.mark.parametrize(
    "path",
    [
        "/api/experiments/..%2F..%2Fpersistent_progress_trackers",
        "/api/experiments/%2Fetc%2Fpasswd",
        "/api/experiments/0001%2F..%2F0002",
        "/api/experiments/abc",
        "/api/experiments/9999",
        "/api/experiments/0001/files/..%2F..%2Ftext_generation_results.csv",
        "/api/experiments/0001/files/%2Fetc%2Fpasswd",
        "/api/experiments/0001/files/0002_1_experiment_setup.json",
        "/api/experiments/0001/files/0001_1_missing.json",
        "/api/experiments/0001/files/.work",
        "/api/suites/..%2F..%2Fetc",
        "/api/suites/%2Fetc%2Fpasswd",
        "/api/suites/nope",
        "/static/..%2F..%2Fserve%2Fapp.py",
    ],
)
def test_traversal_and_unknown_names_are_404(served: Server, path: str) -> None:
    status, _, body = served.get(path)
    assert status == 404, path
    assert b"root:" not in body and b"experiment_id" not in body


def test_a_symlink_out_of_the_results_folder_is_404(served: Server, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "0077_1_experiment_setup.json").write_text('{"secret": 1}')
    (served.root / "results" / "raw_results" / "0077").symlink_to(outside)
    link = served.root / "results" / "raw_results" / "0001" / "0001_3_elsewhere.json"
    link.symlink_to(outside / "0077_1_experiment_setup.json")
    for path in (
        "/api/experiments/0077",
        "/api/experiments/0077/timeline",
        "/api/experiments/0077/files/0077_1_experiment_setup.json",
        "/api/experiments/0001/files/0001_3_elsewhere.json",
    ):
        status, _, body = served.get(path)
        assert status == 404, path
        assert b"secret" not in body


def test_nothing_changes_anything(served: Server) -> None:
    import urllib.request

    before = sorted(str(p.relative_to(served.root)) for p in served.root.rglob("*"))
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        request = urllib.request.Request(
            served.url + "/api/suites",
            method=method,
            data=b"{}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        try:
            urllib.request.urlopen(request, timeout=10)
            raise AssertionError(f"{method} was accepted")
        except urllib.error.HTTPError as err:
            assert err.code == 405
    for path in PATHS:
        assert served.get(path)[0] == 200, path
    assert sorted(str(p.relative_to(served.root)) for p in served.root.rglob("*")) == before


def test_a_damaged_tracker_is_a_clear_error_and_the_server_stays_up(served: Server) -> None:
    snapshot = served.root / "persistent_progress_trackers" / "tracker_state.json"
    ProgressTracker(snapshot.parent).sync()  # make sure the snapshot file exists
    good = snapshot.read_bytes()
    snapshot.write_text("{ torn")
    served.cache.refresh()  # rather than wait for the background refresh to see it
    status, body = served.json("/api/suites")
    assert status == 503
    error = body["tracker_error"]
    assert "tracker_state.json" in error["message"]
    assert any("tracker_state.json" in line for line in error["check"])
    assert error["fix"].startswith("joulebench tracker repair")
    _, _, metrics = served.get("/metrics")
    assert b"joulebench_tracker_readable 0.0" in metrics
    assert served.json("/api/experiments/0002")[0] == 200  # results need no tracker
    snapshot.write_bytes(good)
    served.cache.refresh()
    status, body = served.json("/api/suites")
    assert status == 200 and body["suites"][0]["done"] == 8


def test_metrics_parse_with_prometheus_clients_parser(served: Server) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    status, headers, body = served.get("/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    keys = {
        (s.labels["suite"], s.labels["state"]): s.value for s in families["joulebench_keys"].samples
    }
    assert keys == {("demo", "done"): 8.0}
    finished = families["joulebench_experiments_finished"].samples
    assert [(s.labels, s.value) for s in finished] == [({"suite": "demo"}, 8.0)]
    energy = {
        s.labels["config"]: s.value
        for s in families["joulebench_energy_per_output_token_joules"].samples
    }
    assert set(energy) == {"batch_1", "batch_2", "batch_4", "sampling"}
    assert all(v > 0 for v in energy.values())
    assert families["joulebench_tracker_readable"].samples[0].value == 1.0
    assert "joulebench_failures" in families


def test_failures_show_by_cause_in_json_and_metrics(served: Server) -> None:
    tracker = ProgressTracker(served.root / "persistent_progress_trackers")
    key = "models/tiny-llama::demo::extra::1"
    tracker.register("demo", [(key, "h")])
    tracker.claim(key, "h")
    tracker.fail(key, "oom", "CUDA out of memory")
    served.cache.refresh()
    _, body = served.json("/api/suites")
    (demo,) = body["suites"]
    assert demo["counts"]["failed:oom"] == 1 and demo["total"] == 9
    assert demo["failures"][0]["cause"] == "oom"
    assert "out of memory" in demo["failures"][0]["error"]
    from prometheus_client.parser import text_string_to_metric_families

    families = {
        f.name: f for f in text_string_to_metric_families(served.get("/metrics")[2].decode())
    }
    assert [(s.labels, s.value) for s in families["joulebench_failures"].samples] == [
        ({"suite": "demo", "cause": "oom"}, 1.0)
    ]


def test_fifty_clients_share_one_computation_until_the_tracker_changes(served: Server) -> None:
    served.json("/api/suites")
    before = served.cache.computations
    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(lambda _: served.get("/api/suites")[0], range(200)))
    assert statuses == [200] * 200
    assert served.cache.computations == before
    etag = served.get("/api/suites")[1]["etag"]
    assert served.get("/api/suites", headers={"If-None-Match": etag})[0] == 304
    ProgressTracker(served.root / "persistent_progress_trackers").register(
        "demo", [("models/tiny-llama::demo::new::1", "h")]
    )
    served.cache.check_interval_s = 0.0
    wait_for(
        lambda: served.json("/api/suites")[1]["suites"][0]["total"] == 9,
        10,
        "the background refresh to see the new key",
    )
    assert served.cache.computations == before + 1


def test_it_keeps_serving_whole_states_while_a_job_writes_the_tracker(served: Server) -> None:
    tracker = ProgressTracker(served.root / "persistent_progress_trackers")
    keys = [f"models/tiny-llama::demo::live{i}::1" for i in range(30)]
    tracker.register("demo", [(k, "h") for k in keys])
    served.cache.refresh()
    served.cache.check_interval_s = 0.0
    stop = threading.Event()

    def writer() -> None:
        for key in keys:
            claim = tracker.claim(key, "h")
            tracker.complete(key, claim.experiment_id or "")
        stop.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    while not stop.is_set() or len(seen) < 3:
        status, body = served.json("/api/suites")
        assert status == 200
        (demo,) = body["suites"]
        assert demo["total"] == 38 and sum(demo["counts"].values()) == 38
        seen.append(demo["done"])
    thread.join()
    served.cache.refresh()
    seen.append(served.json("/api/suites")[1]["suites"][0]["done"])
    assert seen == sorted(seen) and seen[-1] == 38


def test_report_draws_every_runs_power_timeline(
    checkout_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from joulebench import api

    monkeypatch.chdir(checkout_copy)
    files = api.report_suite("demo")
    assert sorted(p.name for p in files.timelines) == [
        f"{i:04d}_power_timeline.png" for i in range(1, 9)
    ]
    assert all(p.stat().st_size > 1000 for p in files.timelines)


def test_a_half_written_result_folder_is_named_not_fatal(served: Server) -> None:
    folder = served.root / "results" / "raw_results" / "0099"
    folder.mkdir()
    setup = served.root / "results" / "raw_results" / "0001" / "0001_1_experiment_setup.json"
    (folder / "0099_1_experiment_setup.json").write_bytes(setup.read_bytes())
    status, body = served.json("/api/experiments/0099")
    assert status == 404 and "0099_4_inference_metrics.json: not found" in body["error"]
    (folder / "0099_4_inference_metrics.json").write_text('{"num_prompts": 4, "total_')
    status, body = served.json("/api/experiments/0099")
    assert status == 404 and "not valid JSON" in body["error"]
    assert served.json("/api/experiments/0099/timeline")[0] == 404
    assert served.json("/api/experiments/0001")[0] == 200
    assert served.json("/api/suites/demo")[0] == 200


def test_a_bad_results_csv_is_named_and_skipped_not_a_500(served: Server) -> None:
    bad = served.root / "results" / "other_results.csv"
    bad.write_bytes(b"experiment_id,key\n\xff\xfe0042,x\n")
    served.cache.refresh()
    status, body = served.json("/api/suites")
    assert status == 200 and body["suites"][0]["done"] == 8
    (problem,) = body["results_problems"]
    assert problem.startswith("other_results.csv: not UTF-8")
    assert str(served.root) not in problem
    status, page = served.json("/api/suites/demo")
    assert status == 200 and len(page["results"]) == 8
    assert served.get("/metrics")[0] == 200
    built = served.cache.computations
    served.cache.check_interval_s = 0.0
    for _ in range(20):
        served.json("/api/suites")
    served.cache.refresh()
    assert served.cache.computations == built  # built once, then cached like any state


def test_a_failed_build_waits_for_a_change_instead_of_spinning(
    checkout_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from joulebench import api
    from joulebench.serve.state import StateCache

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "status_report", broken)
    root = checkout_copy
    cache = StateCache(
        api.Paths(root / "configs", root / "persistent_progress_trackers", root / "results"),
        use_sacct=False,
        check_interval_s=0.0,
    )
    for _ in range(5):
        with pytest.raises(RuntimeError):
            cache.get()
    assert cache.computations == 1
    monkeypatch.undo()
    (root / "results" / "more_results.csv").write_text("experiment_id\n")
    assert cache.get().tracker_ok and cache.computations == 2


def _energy_configs(served: Server) -> set[tuple[str, str]]:
    from prometheus_client.parser import text_string_to_metric_families

    families = {
        f.name: f for f in text_string_to_metric_families(served.get("/metrics")[2].decode())
    }
    family = families["joulebench_energy_per_output_token_joules"]
    return {(s.labels["suite"], s.labels["config"]) for s in family.samples}


def test_right_after_fresh_no_archived_run_is_current_as_report_decides(served: Server) -> None:
    from joulebench import api

    tracker = ProgressTracker(served.root / "persistent_progress_trackers")
    keys = sorted(tracker.read().keys)
    tracker.archive_suite("demo")
    tracker.register("demo", [(k, "h") for k in keys])  # --fresh: registered, none claimed
    served.cache.refresh()
    assert api.current_experiment_ids("demo", tracker.dir) == {}
    status, body = served.json("/api/suites/demo")
    assert status == 200 and len(body["results"]) == 8
    assert {r["status"] for r in body["results"]} == {"archived"}
    assert body["summaries"] == [] and body["plots"] == []
    assert _energy_configs(served) == set()


def test_metrics_judge_each_suite_by_its_own_tracker_entries(served: Server) -> None:
    import csv

    source = served.root / "results" / "text_generation_results.csv"
    with source.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames or [], list(reader)
    for row in rows:  # a suite whose results were copied in without its tracker
        row["suite"] = "imported"
        row["key"] = row["key"].replace("::demo::", "::imported::")
    with (served.root / "results" / "imported_results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    served.cache.refresh()
    configs = {"batch_1", "batch_2", "batch_4", "sampling"}
    assert _energy_configs(served) == {(s, c) for s in ("demo", "imported") for c in configs}


def test_without_a_token_only_loopback_host_headers_pass(checkout_copy: Path) -> None:
    from contextlib import contextmanager

    from tests.serve.conftest import start_server

    with contextmanager(start_server)(checkout_copy, token=None) as server:
        port = server.url.rsplit(":", 1)[1]
        for host in ("127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            assert server.get("/api/suites", token=None, headers={"Host": host})[0] == 200, host
        for host in ("rebind.example", f"rebind.example:{port}", "127.0.0.1.nip.io"):
            status, _, body = server.get("/api/suites", token=None, headers={"Host": host})
            assert status == 400 and b"demo" not in body, host


def test_allowed_hosts_name_the_bound_address() -> None:
    from joulebench.serve.app import allowed_hosts

    assert allowed_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "[::1]"]
    assert allowed_hosts("::1") == ["127.0.0.1", "localhost", "[::1]"]
    assert allowed_hosts("127.0.0.2")[-1] == "127.0.0.2"


def test_a_symlinked_section_file_pointing_out_is_404_and_errors_hold_no_server_paths(
    served: Server, tmp_path: Path
) -> None:
    folder = served.root / "results" / "raw_results" / "0002"
    outside = tmp_path / "secret_energy.json"
    energy = folder / "0002_7_global_energy_results.json"
    outside.write_text(energy.read_text().replace("{", '{"secret": 1, ', 1))
    energy.unlink()
    energy.symlink_to(outside)
    status, _, body = served.get("/api/experiments/0002")
    assert status == 404 and b"secret" not in body
    assert b"0002_7_global_energy_results.json: not found" in body
    assert str(served.root).encode() not in body and str(tmp_path).encode() not in body


@pytest.mark.parametrize("content", ["[1, 2]", '"text"', '{"provenance": 7}', "\udcff"])
def test_result_json_of_the_wrong_shape_is_a_named_404_not_a_500(
    served: Server, content: str
) -> None:
    setup = served.root / "results" / "raw_results" / "0003" / "0003_1_experiment_setup.json"
    setup.write_bytes(content.encode("utf-8", "surrogateescape"))
    status, body = served.json("/api/experiments/0003")
    assert status == 404 and "0003" in body["error"]
    assert str(served.root) not in body["error"]
    assert served.json("/api/experiments/0001")[0] == 200


def test_tracker_repair_is_suggested_only_for_a_damaged_tracker(tmp_path: Path) -> None:
    from joulebench import api
    from joulebench.serve.state import StateCache

    (tmp_path / "tracker").write_text("a file where the tracker folder should be")
    cache = StateCache(
        api.Paths(tmp_path / "configs", tmp_path / "tracker", tmp_path / "results"),
        use_sacct=False,
    )
    snap = cache.get()
    assert not snap.tracker_ok
    error = snap.suites["tracker_error"]
    assert error["fix"] is None and "is a file" in error["message"]
    assert error["check"] == [error["message"]]
