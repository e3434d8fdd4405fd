"""The supervisor's rendered configuration."""
import configparser

from nasbox import supervisor


def test_supervisord_conf_runs_smbd_in_foreground_with_watchdog(load, tmp_path):
    config = load({"SHARE_A": "write a /a alice:pw", "LOG_LEVEL": "warning"})
    text = supervisor.render(supervisor.programs(config), tmp_path, config.server.log_level)
    parsed = configparser.RawConfigParser()
    parsed.read_string(text)
    assert parsed["supervisord"]["nodaemon"] == "true"
    assert parsed["supervisord"]["loglevel"] == "warn"
    assert parsed["program:smbd"]["command"] == (
        "smbd --foreground --no-process-group --debug-stdout --configfile=/etc/samba/smb.conf")
    assert parsed["program:smbd"]["stdout_logfile"] == "/dev/stdout"
    assert parsed["eventlistener:watchdog"]["events"] == "PROCESS_STATE_FATAL"
    assert parsed["eventlistener:watchdog"]["command"].endswith("nasbox supervisor-watchdog")
