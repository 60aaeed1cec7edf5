"""reliability/: the fast variants of the serving scenarios (4, 5, 6, 10 server), each against a real
`fmkeras serve` subprocess on 127.0.0.1 with a free port."""
import pytest

from reliability import hostile_clients, hot_swap, hostile_http, overload_soak, server_sigterm
from reliability.__main__ import SCENARIOS, scoreboard


def fast(name):
    return SCENARIOS[name][2]


@pytest.mark.slow
def test_hostile_requests_get_4xx_fast_and_server_stays_up(tmp_path):
    entry = hostile_http.run(str(tmp_path), **fast("hostile_http"))
    assert entry["ok"], entry["failures"]
    attacks = entry["attacks"]
    assert attacks["deep_json_100k"]["status"] == 400 and attacks["gzip_bomb"]["status"] == 413
    assert attacks["oversized_content_length"]["status"] == 413 and attacks["png_bomb_5000"]["status"] == 400
    assert attacks["unsupported_encoding"]["status"] == 415 and attacks["classify_unimplemented"]["status"] == 501
    assert attacks["huge_batch_9mb"]["status"] == 400 and attacks["gzip_ok"]["status"] == 200
    assert entry["slowloris"]["statuses"] == ["408"]
    assert entry["slowloris"]["max_seconds_to_cut_off"] < hostile_http.READ_TIMEOUT + 2
    assert entry["rss_peak_mb"] - entry["rss_before_mb"] < entry["rss_limit_mb"]
    assert entry["server_alive_at_end"] and entry["5xx_count"] == 0 and not entry["server_log_has_traceback"]


@pytest.mark.slow
def test_hostile_clients_are_refused_fast_and_idle_sockets_lock_nobody_out(tmp_path):
    entry = hostile_clients.run(str(tmp_path), **fast("hostile_clients"))
    assert entry["ok"], entry["failures"]
    attacks = entry["attacks"]
    assert attacks["escaped_quotes_gzip"]["status"] == 400 and attacks["escaped_quotes_gzip"]["seconds"] < 5
    assert all(attacks[name]["status"] == 400 for name in attacks if name.startswith("bomb_"))
    assert attacks["foreign_origin"]["status"] == 403 and attacks["foreign_host_dns_rebinding"]["status"] == 403
    assert attacks["non_ascii_content_length"]["status"] == 400 and attacks["non_ascii_http_version"]["status"] == 400
    assert entry["idle_flood"]["normal_status"] == 200 and entry["idle_flood"]["idle_sockets"] > 16
    assert entry["refused"] == len(attacks) and entry["5xx_count"] == 0 and entry["crashes"] == 0
    assert entry["rss_peak_growth_mb"] < entry["rss_limit_mb"]


@pytest.mark.slow
def test_overload_sheds_with_fast_429_and_no_5xx_or_drift(tmp_path):
    entry = overload_soak.run(str(tmp_path), **fast("overload_soak"))
    assert entry["ok"], entry["failures"]
    assert set(entry["soak"]["statuses"]) == {"200"} and entry["soak"]["requests"] > 50
    assert entry["overload"]["statuses"]["429"] > 0 and entry["5xx_count"] == 0
    assert abs(entry["rss_drift"]) < 0.05 and abs(entry["open_files_drift"]) < 0.05


@pytest.mark.slow
def test_hot_swap_by_rename_and_slow_copy_never_fails_or_serves_partial(tmp_path):
    entry = hot_swap.run(str(tmp_path), **fast("hot_swap"))
    assert entry["ok"], entry["failures"]
    assert [t["version"] for t in entry["timeline"]] == [2, 3]
    assert entry["failed_requests"] == 0 and entry["answers_matching_no_version"] == 0
    assert entry["failed_loads_seen"] == [] and entry["status_polls"] > 10
    assert entry["rollback"] == {"pinned": 1, "latest_on_disk": 3, "serves_v1": True, "latest_status": 404}


@pytest.mark.slow
def test_sigterm_drains_in_flight_requests_and_exits_zero(tmp_path):
    entry = server_sigterm.run(str(tmp_path), **fast("server_sigterm"))
    assert entry["ok"], entry["failures"]
    assert entry["in_flight_statuses"] == [200] * 3 and entry["in_flight_correct"] == 3
    assert entry["new_connection"] == "refused" and entry["kept_alive_request"] == 503
    assert entry["exit_code"] == 0 and entry["exit_seconds"] < entry["grace_seconds"]


def test_scoreboard_sums_requests_and_5xx_of_serving_scenarios():
    board = scoreboard({"hostile_http": {"ok": True, "requests_sent": 60, "5xx_count": 0},
                        "overload_soak": {"ok": False, "requests_sent": 900, "5xx_count": 2}}, 1.0)
    assert board["requests_sent"] == 960 and board["5xx_count"] == 2 and board["scenarios_passed"] == 1
    assert not set(board["not_run"]) & {"4", "5", "6", "9 (REST)", "10 (server)"}
