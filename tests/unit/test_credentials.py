"""Tests for cosfs.wire.credentials: lookup order, passwd and key=value files, permissions, reload."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from cosfs.wire.credentials import (
    Credentials,
    FileProvider,
    StaticProvider,
    check_permissions,
    parse_expiration,
    resolve_credentials,
)
from cosfs.wire.errors import ConfigError
from tests.support.clock import FakeClock

BUCKET = "examplebucket-1250000000"
SECRET = "SECRETKEYsecretkey0123456789abcd"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def bump_mtime(path: Path) -> None:
    """Move mtime a second forward, so a rewrite in the same clock tick is still a change."""
    mtime = os.stat(path).st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(mtime, mtime))


def resolve(tmp_path: Path, **kwargs):
    """resolve_credentials with a hermetic environment, home and /etc file unless overridden."""
    kwargs.setdefault("environ", {})
    kwargs.setdefault("home", str(tmp_path / "home"))
    kwargs.setdefault("etc_file", str(tmp_path / "etc" / "passwd-cosfs"))
    return resolve_credentials(BUCKET, **kwargs)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    return tmp_path / "etc" / "passwd-cosfs"


# --- permissions ---------------------------------------------------------------------------


def test_home_file_readable_by_others_is_refused_with_the_chmod_fix(tmp_path, home):
    path = write(home / ".passwd-cosfs", f"AKIDdefault:{SECRET}\n", 0o644)

    with pytest.raises(ConfigError) as info:
        resolve(tmp_path)

    assert str(info.value) == (
        f"credentials file {path} is readable by group or others (mode 0644); "
        f"run: chmod 600 {path}"
    )


def test_home_file_mode_600_is_accepted(tmp_path, home):
    write(home / ".passwd-cosfs", f"AKIDdefault:{SECRET}\n", 0o600)

    provider = resolve(tmp_path)

    assert provider.get() == Credentials("AKIDdefault", SECRET)
    assert provider.source == f"passwd file {home / '.passwd-cosfs'}"


def test_home_file_mode_640_is_refused(tmp_path, home):
    write(home / ".passwd-cosfs", f"AKIDdefault:{SECRET}\n", 0o640)

    with pytest.raises(ConfigError, match=r"mode 0640\); run: chmod 600 "):
        resolve(tmp_path)


def test_etc_file_mode_640_is_accepted(tmp_path, etc):
    write(etc, f"AKIDetc:{SECRET}\n", 0o640)

    provider = resolve(tmp_path)

    assert provider.get() == Credentials("AKIDetc", SECRET)


def test_etc_file_writable_by_group_is_refused_with_chmod_640(tmp_path, etc):
    write(etc, f"AKIDetc:{SECRET}\n", 0o660)

    expected = r"writable by group or others \(mode 0660\); run: chmod 640 "
    with pytest.raises(ConfigError, match=expected):
        resolve(tmp_path)


def test_check_permissions_refuses_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="is not a regular file"):
        check_permissions(str(tmp_path))


def test_check_permissions_allows_group_read_only_when_asked(tmp_path):
    path = write(tmp_path / "keys", f"AKID:{SECRET}\n", 0o640)

    check_permissions(str(path), allow_group_read=True)
    with pytest.raises(ConfigError, match="chmod 600"):
        check_permissions(str(path))


def test_passwd_file_option_pointing_at_the_etc_file_allows_640(tmp_path, etc):
    write(etc, f"AKIDetc:{SECRET}\n", 0o640)

    provider = resolve(tmp_path, passwd_file=str(etc))

    assert provider.get().secret_id == "AKIDetc"


def test_passwd_file_option_elsewhere_refuses_640(tmp_path):
    path = write(tmp_path / "keys", f"AKID:{SECRET}\n", 0o640)

    with pytest.raises(ConfigError, match="chmod 600"):
        resolve(tmp_path, passwd_file=str(path))


# --- passwd format -------------------------------------------------------------------------


def test_bucket_line_beats_the_default_line_even_when_the_default_comes_first(tmp_path, home):
    write(home / ".passwd-cosfs", f"AKIDdefault:{SECRET}\nother-1250000000:AKIDother:x\n"
          f"{BUCKET}:AKIDbucket:{SECRET}\n")

    assert resolve(tmp_path).get().secret_id == "AKIDbucket"


def test_default_line_is_used_when_no_line_names_the_bucket(tmp_path, home):
    write(home / ".passwd-cosfs", f"other-1250000000:AKIDother:{SECRET}\nAKIDdefault:{SECRET}\n")

    assert resolve(tmp_path).get().secret_id == "AKIDdefault"


def test_legacy_line_without_appid_matches(tmp_path, home):
    write(home / ".passwd-cosfs", f"examplebucket:AKIDlegacy:{SECRET}\n")

    assert resolve(tmp_path).get().secret_id == "AKIDlegacy"


def test_full_bucket_name_beats_legacy_name(tmp_path, home):
    write(home / ".passwd-cosfs", f"examplebucket:AKIDlegacy:x\n{BUCKET}:AKIDfull:{SECRET}\n")

    assert resolve(tmp_path).get().secret_id == "AKIDfull"


def test_comments_blank_lines_and_surrounding_whitespace_are_ignored(tmp_path, home):
    write(home / ".passwd-cosfs", f"# keys for {BUCKET}\n\n   {BUCKET}:AKIDbucket:{SECRET}  \n")

    assert resolve(tmp_path).get() == Credentials("AKIDbucket", SECRET)


@pytest.mark.parametrize("bad_line", [f"{BUCKET}:AKID:{SECRET}:extra", SECRET, "AKID:"],
                         ids=["four-fields", "one-field", "empty-field"])
def test_malformed_line_names_the_line_number_and_hides_the_line(tmp_path, home, bad_line):
    path = write(home / ".passwd-cosfs", f"# comment\nAKIDdefault:x\n{bad_line}\n")

    with pytest.raises(ConfigError) as info:
        resolve(tmp_path)

    message = str(info.value)
    assert f"passwd file {path} line 3 " in message
    assert SECRET not in message and "AKID" not in message


def test_no_line_for_the_bucket_and_no_default_says_what_to_add(tmp_path, home):
    path = write(home / ".passwd-cosfs", f"other-1250000000:AKIDother:{SECRET}\n")

    with pytest.raises(ConfigError) as info:
        resolve(tmp_path)

    assert str(info.value).startswith(f"passwd file {path} has no line for bucket {BUCKET} ")
    assert f"add {BUCKET}:SecretId:SecretKey" in str(info.value)


# --- lookup order --------------------------------------------------------------------------


def test_environment_beats_the_home_and_etc_files(tmp_path, home, etc):
    write(home / ".passwd-cosfs", f"AKIDhome:{SECRET}\n")
    write(etc, f"AKIDetc:{SECRET}\n")
    environ = {"COSFS_SECRET_ID": "AKIDenv", "COSFS_SECRET_KEY": SECRET}

    provider = resolve(tmp_path, environ=environ)

    assert provider.get() == Credentials("AKIDenv", SECRET)
    assert provider.source == "environment (COSFS_SECRET_ID)"


def test_passwd_file_option_beats_the_environment(tmp_path):
    path = write(tmp_path / "keys", f"AKIDoption:{SECRET}\n")
    environ = {"COSFS_SECRET_ID": "AKIDenv", "COSFS_SECRET_KEY": SECRET}

    provider = resolve(tmp_path, passwd_file=str(path), environ=environ)

    assert provider.get().secret_id == "AKIDoption"


def test_home_file_beats_the_etc_file(tmp_path, home, etc):
    write(home / ".passwd-cosfs", f"AKIDhome:{SECRET}\n")
    write(etc, f"AKIDetc:{SECRET}\n")

    assert resolve(tmp_path).get().secret_id == "AKIDhome"


def test_cosfs_variables_beat_the_legacy_cosfs_variables(tmp_path):
    environ = {"COSFS_SECRET_ID": "AKIDours", "COSFS_SECRET_KEY": SECRET,
               "COSACCESSKEYID": "AKIDlegacy", "COSSECRETACCESSKEY": SECRET}

    assert resolve(tmp_path, environ=environ).get().secret_id == "AKIDours"


def test_legacy_cosfs_variables_are_used(tmp_path):
    environ = {"COSACCESSKEYID": "AKIDlegacy", "COSSECRETACCESSKEY": SECRET}

    provider = resolve(tmp_path, environ=environ)

    assert provider.get() == Credentials("AKIDlegacy", SECRET)
    assert provider.source == "environment (COSACCESSKEYID)"


def test_security_token_from_the_environment(tmp_path):
    environ = {"COSFS_SECRET_ID": "AKIDtmp", "COSFS_SECRET_KEY": SECRET,
               "COSFS_SECURITY_TOKEN": "tok123"}

    assert resolve(tmp_path, environ=environ).get().token == "tok123"


@pytest.mark.parametrize("present, missing", [("COSFS_SECRET_ID", "COSFS_SECRET_KEY"),
                                              ("COSFS_SECRET_KEY", "COSFS_SECRET_ID"),
                                              ("COSACCESSKEYID", "COSSECRETACCESSKEY")])
def test_half_set_environment_pair_names_the_missing_variable(tmp_path, home, present, missing):
    write(home / ".passwd-cosfs", f"AKIDhome:{SECRET}\n")

    with pytest.raises(ConfigError) as info:
        resolve(tmp_path, environ={present: "value"})

    assert str(info.value) == f"{present} is set but {missing} is not; set both or neither"


def test_token_without_key_pair_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="COSFS_SECURITY_TOKEN is set but COSFS_SECRET_ID"):
        resolve(tmp_path, environ={"COSFS_SECURITY_TOKEN": "tok"})


def test_public_bucket_is_anonymous_even_with_credentials_around(tmp_path):
    environ = {"COSFS_SECRET_ID": "AKIDenv", "COSFS_SECRET_KEY": SECRET}

    provider = resolve(tmp_path, public_bucket=True, environ=environ)

    assert provider.get() is None
    assert provider.source == "anonymous (public_bucket=1)"


def test_missing_passwd_file_option_is_an_error(tmp_path):
    missing = tmp_path / "nope"

    with pytest.raises(ConfigError, match=f"^passwd_file {missing} does not exist$"):
        resolve(tmp_path, passwd_file=str(missing))


def test_nothing_found_lists_every_source_and_the_fixes(tmp_path, home, etc):
    with pytest.raises(ConfigError) as info:
        resolve(tmp_path)

    message = str(info.value)
    assert "\n" not in message
    for expected in ("COSFS_SECRET_ID/COSFS_SECRET_KEY", "COSACCESSKEYID/COSSECRETACCESSKEY",
                     str(home / ".passwd-cosfs"), str(etc), "chmod 600",
                     "-o passwd_file=", "-o public_bucket=1"):
        assert expected in message


# --- key=value files -----------------------------------------------------------------------


def test_passwd_file_option_with_key_values_is_a_reloading_file_provider(tmp_path):
    path = write(tmp_path / "sts", "COSAccessKeyId=AKIDtmp\nCOSSecretKey=sk\n"
                 "COSAccessToken=tok\nCOSAccessTokenExpire=2017-08-29T20:30:00\n")

    provider = resolve(tmp_path, passwd_file=str(path))

    assert isinstance(provider, FileProvider)
    assert provider.get() == Credentials("AKIDtmp", "sk", "tok", 1504038600.0)


def test_key_names_are_case_insensitive_and_aliases_accepted(tmp_path):
    path = write(tmp_path / "sts", "# refreshed by cron\n\n  SECRETID = AKIDtmp \n"
                 "SecretKey=sk\nSessionToken=tok\n")

    assert FileProvider(str(path)).get() == Credentials("AKIDtmp", "sk", "tok")


def test_file_change_is_picked_up_only_after_the_check_interval(tmp_path):
    clock = FakeClock()
    path = write(tmp_path / "sts", "secret_id=AKID1\nsecret_key=sk1\ntoken=tok1\n")
    provider = FileProvider(str(path), clock=clock, check_interval=1.0)
    write(path, "secret_id=AKID2\nsecret_key=sk2\ntoken=tok2\n")
    bump_mtime(path)

    before = provider.get()
    clock.advance(1.5)
    after = provider.get()

    assert before.token == "tok1"
    assert after == Credentials("AKID2", "sk2", "tok2")


def test_failed_reload_keeps_the_last_good_credentials_and_warns_once(tmp_path, caplog):
    clock = FakeClock()
    path = write(tmp_path / "sts", f"secret_id=AKID1\nsecret_key={SECRET}\n")
    provider = FileProvider(str(path), clock=clock)
    write(path, f"secret_id=AKID2\n{SECRET}\n")
    bump_mtime(path)

    with caplog.at_level(logging.WARNING, logger="cosfs.wire.credentials"):
        for _ in range(3):
            clock.advance(2)
            served = provider.get()

    assert served == Credentials("AKID1", SECRET)
    assert len(caplog.records) == 1
    assert "line 2 is not key=value" in caplog.records[0].getMessage()
    assert SECRET not in caplog.text


def test_reload_recovers_once_the_file_is_fixed(tmp_path):
    clock = FakeClock()
    path = write(tmp_path / "sts", "secret_id=AKID1\nsecret_key=sk1\n")
    provider = FileProvider(str(path), clock=clock)
    path.unlink()
    clock.advance(2)
    provider.get()
    write(path, "secret_id=AKID3\nsecret_key=sk3\n")

    clock.advance(2)

    assert provider.get() == Credentials("AKID3", "sk3")


def test_reload_refuses_a_file_made_world_readable(tmp_path, caplog):
    clock = FakeClock()
    path = write(tmp_path / "sts", "secret_id=AKID1\nsecret_key=sk1\n")
    provider = FileProvider(str(path), clock=clock)
    write(path, "secret_id=AKID2\nsecret_key=sk2\n", 0o644)
    bump_mtime(path)

    clock.advance(2)
    with caplog.at_level(logging.WARNING, logger="cosfs.wire.credentials"):
        served = provider.get()

    assert served.secret_id == "AKID1"
    assert "chmod 600" in caplog.text


@pytest.mark.parametrize("text, missing", [("secret_id=AKID\n", "secret_key"),
                                           ("secret_key=sk\n", "secret_id")])
def test_first_load_without_the_key_pair_fails(tmp_path, text, missing):
    path = write(tmp_path / "sts", text)

    with pytest.raises(ConfigError, match=f"has no {missing}"):
        FileProvider(str(path))


def test_first_load_with_an_unparsable_line_names_it_without_the_secret(tmp_path):
    path = write(tmp_path / "sts", f"secret_id=AKID\n{SECRET}\n")

    with pytest.raises(ConfigError) as info:
        FileProvider(str(path))

    assert f"credentials file {path} line 2 is not key=value" in str(info.value)
    assert SECRET not in str(info.value)


def test_first_load_of_a_missing_file_fails(tmp_path):
    with pytest.raises(ConfigError, match="cannot read credentials file"):
        FileProvider(str(tmp_path / "nope"))


@pytest.mark.parametrize("text, expected", [
    ("2017-08-29T20:30:00", 1504038600.0),
    ("2017-08-29T20:30:00Z", 1504038600.0),
    ("2017-08-29T22:30:00+02:00", 1504038600.0),
    ("1504038600", 1504038600.0),
    (" 1504038600.5 ", 1504038600.5),
])
def test_parse_expiration(text, expected):
    assert parse_expiration(text) == expected


def test_unparsable_expiration_names_the_line(tmp_path):
    path = write(tmp_path / "sts", "secret_id=AKID\nsecret_key=sk\nexpiration=tomorrow\n")

    with pytest.raises(ConfigError, match=r"line 3: expiration 'tomorrow' is neither"):
        FileProvider(str(path))


# --- Credentials ---------------------------------------------------------------------------


def test_repr_hides_the_secret_key_and_token():
    text = repr(Credentials("AKIDvisible", SECRET, "tok-secret-123"))

    assert "AKIDvisible" in text
    assert SECRET not in text and "tok-secret-123" not in text


def test_static_provider_returns_what_it_was_given():
    credentials = Credentials("AKID", SECRET)

    assert StaticProvider(credentials, "test").get() is credentials


@pytest.mark.parametrize("text, whose", [
    (f"AKIDa:{SECRET}\nAKIDb:{SECRET}\n", "default lines"),
    (f"{BUCKET}:AKIDa:{SECRET}\n{BUCKET}:AKIDb:{SECRET}\n", f"bucket {BUCKET} lines"),
])
def test_two_lines_for_the_same_bucket_are_refused(tmp_path, home, text, whose):
    path = write(home / ".passwd-cosfs", text)

    with pytest.raises(ConfigError) as info:
        resolve(tmp_path)

    assert str(info.value) == f"passwd file {path} lines 1 and 2 are both {whose}; keep one"


def test_expiration_without_offset_is_gmt_whatever_the_local_zone(monkeypatch):
    with monkeypatch.context() as patch:
        patch.setenv("TZ", "CST-8")
        time.tzset()
        parsed = parse_expiration("2017-08-29T20:30:00")
    time.tzset()

    assert parsed == 1504038600.0
