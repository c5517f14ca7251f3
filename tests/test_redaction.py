"""Secrets are recognised by name and by shape, and never written: refused as parameters,
redacted in URLs, errors and logs."""

from __future__ import annotations

import logging

import pytest

from anchormix_kedro.redaction import (
    REDACTED,
    RedactingFilter,
    install_log_redaction,
    is_secret_name,
    redact,
    secret_parameters,
)


@pytest.mark.parametrize(
    "name",
    ["api_key", "apikey", "openai_api_key", "access_token", "token", "hf_token", "password",
     "db_password", "secret", "client_secret", "secret_key", "aws_secret_access_key",
     "private_key", "passwd", "API_KEY"],
)  # fmt: skip
def test_secret_like_names_are_recognised(name):
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    ["api_key_env", "credentials", "max_new_tokens", "tokenizer", "seed", "base_url",
     "bertscore_model", "keywords"],
)  # fmt: skip
def test_settings_that_only_name_a_secret_are_not_secrets(name):
    assert not is_secret_name(name)


def test_secret_parameters_are_named_by_key_or_by_value_never_shown():
    params = {
        "automated_eval": {
            "judge": {
                "apikey": "sk-X",
                "openai_api_key": "sk-Y",
                "access_token": "hf_Z",
                "api_key_env": "OPENAI_API_KEY",
                "base_url": "http://alice:s3cr3t@judge.example.org/v1",
                "model": "hf_abcdefghijklmnop",
                "token": "",
            }
        },
        "seed": 3,
    }
    found = secret_parameters(params)
    assert found == [
        "automated_eval.judge.apikey",
        "automated_eval.judge.openai_api_key",
        "automated_eval.judge.access_token",
        "automated_eval.judge.base_url",
        "automated_eval.judge.model",
    ]


def test_credentials_in_urls_and_token_like_values_are_redacted():
    text = (
        "cannot reach http://alice:s3cr3t@host:5000/api and postgresql://bob:pw@db/study; "
        "key sk-proj-abcdef123456 token hf_AbCdEf123456 ok"
    )
    clean = redact(text)
    for secret in ("s3cr3t", ":pw@", "sk-proj-abcdef123456", "hf_AbCdEf123456"):
        assert secret not in clean
    assert f"http://alice:{REDACTED}@host:5000/api" in clean
    assert f"postgresql://bob:{REDACTED}@db/study" in clean
    assert redact("http://host:5000 and sqlite:///mlflow.db, sk-learn") == (
        "http://host:5000 and sqlite:///mlflow.db, sk-learn"
    )
    assert redact(None) is None


def test_the_logging_filter_redacts_messages_arguments_and_tracebacks():
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("test_redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("server %s failed", "http://alice:s3cr3t@host")
        try:
            raise ValueError("bad key sk-abcdefgh12345678")
        except ValueError:
            log.exception("boom")
        log.error("plain %d", 3)
    finally:
        log.removeHandler(handler)
    assert "s3cr3t" not in records[0] and REDACTED in records[0]
    assert "Traceback" in records[1] and "sk-abcdefgh12345678" not in records[1]
    assert records[2] == "plain 3"


def test_installed_redaction_survives_a_new_logging_configuration(caplog):
    import logging.config

    previous = logging.getLogRecordFactory()
    try:
        install_log_redaction()
        install_log_redaction()  # once only
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
        with caplog.at_level(logging.INFO, logger="test_redaction.installed"):
            logging.getLogger("test_redaction.installed").info("uri %s", "https://u:pw@h/x")
        assert caplog.messages == [f"uri https://u:{REDACTED}@h/x"]
    finally:
        logging.setLogRecordFactory(previous)
