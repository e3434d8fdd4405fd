"""The supervisor's rendered configuration."""
import configparser

from nasbox import state, supervisor


def test_supervisord_conf_runs_smbd_in_foreground_with_watchdog(load, tmp_path):
    config = load({"SHARE_A": "write a /a alice:pw", "LOG_LEVEL": "warning"})
    text = supervisor.render(supervisor.programs(config), tmp_path, config.server.log_level)
    parsed = configparser.RawConfigParser()
    parsed.read_string(text)
    assert parsed["supervisord"]["nodaemon"] == "true"
    assert parsed["supervisord"]["loglevel"] == "warn"
    assert parsed["program:smbd"]["command"] == (
        f"env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TZ=UTC NASBOX_RUN_DIR={state.run_dir()} {supervisor.NASBOX} smbd")
    assert parsed["program:smbd"]["stdout_logfile"] == "/dev/stdout"
    assert parsed["eventlistener:watchdog"]["events"] == "PROCESS_STATE_FATAL"
    assert parsed["eventlistener:watchdog"]["command"].endswith("nasbox supervisor-watchdog")


def test_mount_keeper_runs_only_with_mounts(load, tmp_path):
    without = supervisor.programs(load({"SHARE_A": "write a /a alice:pw"}))
    with_mount = supervisor.programs(load({"MOUNT_NAS": "/mnt/nas h u:p s /"}))
    assert [p.name for p in without] == ["smbd", "scheduler", "runner"]
    assert [p.name for p in with_mount] == ["smbd", "scheduler", "runner", "mounts"]
    assert with_mount[3].argv[1:] == ["mount", "--keep"]
