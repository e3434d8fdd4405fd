"""Discovery, opt-in: the configuration, the daemons the supervisor runs, avahi's static
service file, and what smb.conf says of NetBIOS and smbd's own mDNS."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from nasbox import state, supervisor
from nasbox.discovery import avahi, daemons
from nasbox.samba import smbconf

SHARES = {"docs": {"access": "write", "paths": ["/data/docs"], "users": ["alice:a"]},
          "mac": {"access": "write", "paths": ["/data/tm"], "users": ["alice"], "time_machine": True},
          "old": {"access": "write", "paths": ["/data/old"], "users": ["alice"], "time_machine": True}}


def test_env_and_yaml_forms(load):
    assert load({"DISCOVERY": "wsd, mdns"}).server.discovery == ("wsd", "mdns")
    assert load(yaml_data={"server": {"discovery": ["netbios"]}}).server.discovery == ("netbios",)
    assert load().server.discovery == ()


def test_problems(problems):
    assert problems({"DISCOVERY": "wsd,bonjour"}) == [
        "env DISCOVERY: [1]: expected one of wsd, mdns, netbios, got 'bonjour'"]
    assert problems(yaml_data={"server": {"discovery": ["mdns", "mdns"]}}) == [
        "nasbox.yaml: server.discovery: expected a list of announcements: wsd, mdns, netbios"]


def test_each_daemon_only_when_asked(load, tmp_path):
    run = tmp_path / "run"
    assert daemons.daemons(load(), run) == []
    config = load({"NAS_NAME": "HomeNAS", "WORKGROUP": "HOME", "DISCOVERY": "netbios,wsd,mdns"})
    found = dict(daemons.daemons(config, run))
    assert found == {
        "wsdd2": ["wsdd2", "-w", "-H", "HomeNAS", "-N", "HOMENAS", "-G", "HOME", "-b", "vendor:nasbox",
                  "-b", "model:nasbox"],
        "avahi": ["avahi-daemon", f"--file={run}/avahi-daemon.conf", "--no-rlimits"],
        "nmbd": ["nmbd", "--foreground", "--no-process-group", "--debug-stdout",
                 "--configfile=/etc/samba/smb.conf"],
    }
    programs = {p.name: p for p in supervisor.programs(config)}
    assert programs["wsdd2"].argv[:2] == ["env", "-i"]  # without the container's environment
    assert programs["wsdd2"].argv[-len(found["wsdd2"]):] == found["wsdd2"]
    assert programs["avahi"].argv[-3:] == dict(daemons.daemons(config, state.run_dir()))["avahi"]


def test_smb_conf_turns_on_netbios_only_when_asked_and_never_smbd_own_mdns(load):
    assert "    disable netbios = yes\n    multicast dns register = no\n" in smbconf.render(load())
    text = smbconf.render(load({"DISCOVERY": "netbios"}))
    assert "    disable netbios = no\n    multicast dns register = no\n" in text


def service_records(text: str) -> dict[str, tuple[str, list[str]]]:
    root = ET.fromstring(text.split("\n", 2)[2])  # after the XML declaration and the DOCTYPE
    return {s.findtext("type"): (s.findtext("port"), [t.text for t in s.findall("txt-record")])
            for s in root.findall("service")}


def test_service_file_announces_smb_the_model_and_every_time_machine_share(load):
    config = load(env={"NAS_NAME": "HomeNAS"}, yaml_data={"shares": SHARES})
    text = avahi.render_service(config)
    assert "<name>HomeNAS</name>" in text
    assert service_records(text) == {
        "_smb._tcp": ("445", []),
        "_device-info._tcp": ("0", ["model=RackMac"]),
        "_adisk._tcp": ("9", ["sys=waMa=0,adVF=0x100", "dk0=adVN=mac,adVF=0x82", "dk1=adVN=old,adVF=0x82"]),
    }
    without = service_records(avahi.render_service(load(yaml_data={"shares": {"docs": SHARES["docs"]}})))
    assert "_adisk._tcp" not in without


def test_the_model_follows_fruit_model_given_through_samba_options(load):
    config = load(yaml_data={"server": {"samba_options": {"Fruit:Model": "MacPro7,1@ECOLOR=226,226,224"}}})
    assert service_records(avahi.render_service(config))["_device-info._tcp"][1] == [
        "model=MacPro7,1@ECOLOR=226,226,224"]


def test_values_are_escaped_for_xml():
    assert avahi.xml_value('A & B <"x">') == "A &amp; B &lt;&quot;x&quot;&gt;"


def test_write_makes_files_avahi_can_read_after_dropping_root(load, tmp_path, monkeypatch):
    monkeypatch.setenv("NASBOX_AVAHI_SERVICES", str(tmp_path / "services"))
    config = load({"DISCOVERY": "mdns", "NAS_NAME": "HomeNAS"})
    daemons.prepare(config, tmp_path)
    service = tmp_path / "services" / "nasbox.service"
    assert service.stat().st_mode & 0o777 == 0o644
    conf = (tmp_path / "avahi-daemon.conf").read_text()
    assert "host-name=HomeNAS\n" in conf and "enable-dbus=no\n" in conf


@pytest.mark.parametrize("name", ["HomeNAS\nX", "Home\u2028NAS"])
def test_a_value_cannot_add_a_line(name):
    with pytest.raises(smbconf.UnsafeValue):
        avahi.xml_value(name)


def test_prepare_without_discovery_writes_nothing(load, tmp_path, monkeypatch):
    monkeypatch.setenv("NASBOX_AVAHI_SERVICES", str(tmp_path / "services"))
    daemons.prepare(load(), tmp_path)
    assert not Path(tmp_path / "services").exists()
