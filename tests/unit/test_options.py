"""Option parsing: defaults, aliases, validation, unknown options."""

from __future__ import annotations

import pytest

from cosfs.command.options import Options, options_from_string, options_help
from cosfs.wire.errors import ConfigError


def test_defaults():
    options = options_from_string("")
    assert options == Options()
    assert options.api == "xml" and options.signature == "cos" and options.retries == 5


def test_values_and_aliases_are_parsed():
    options = options_from_string("api=json,region=ap-shanghai,url=http://127.0.0.1:9,retries=2,"
                                  "use_path_request_style,connect_timeout=2.5")
    assert options.api == "json" and options.region == "ap-shanghai"
    assert options.endpoint == "http://127.0.0.1:9" and options.path_style is True
    assert options.retries == 2 and options.connect_timeout == 2.5


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("stat_cach_ttl=5", "unknown option 'stat_cach_ttl'"),
        ("api=soap", "bad value 'soap' for option 'api'"),
        ("retries=-1", "option 'retries'"),
        ("connect_timeout=fast", "option 'connect_timeout'"),
        ("public_bucket=maybe", "option 'public_bucket'"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(text, fragment):
    with pytest.raises(ConfigError) as raised:
        options_from_string(text)
    assert fragment in str(raised.value)


def test_help_lists_every_option_with_its_default():
    text = options_help()
    assert "signature" in text and "default cos" in text and "passwd_file" in text
