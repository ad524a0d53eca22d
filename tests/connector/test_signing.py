"""Standard Webhooks signatures: the specification's published test vector, and verification."""

from __future__ import annotations

import pytest

from services.connector import signing

# The test vector published with the Standard Webhooks specification.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = '{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


class TestSigning:
    def test_reproduces_the_specification_vector(self) -> None:
        assert signing.sign(SECRET, MSG_ID, TIMESTAMP, BODY) == SIGNATURE

    def test_verifies_the_vector_inside_the_tolerance(self) -> None:
        signing.verify(SECRET, MSG_ID, str(TIMESTAMP), SIGNATURE, BODY, now=TIMESTAMP + 299)

    def test_one_of_several_signatures_is_enough(self) -> None:
        other = signing.sign(signing.new_secret(), MSG_ID, TIMESTAMP, BODY)
        header = f"{other} v2,abc {SIGNATURE}"
        signing.verify(SECRET, MSG_ID, str(TIMESTAMP), header, BODY, now=TIMESTAMP)

    @pytest.mark.parametrize(
        ("msg_id", "ts", "sig", "body", "now", "why"),
        [
            (MSG_ID, str(TIMESTAMP), SIGNATURE, BODY + " ", TIMESTAMP, "signature"),
            ("msg_other", str(TIMESTAMP), SIGNATURE, BODY, TIMESTAMP, "signature"),
            (MSG_ID, str(TIMESTAMP + 1), SIGNATURE, BODY, TIMESTAMP, "signature"),
            (MSG_ID, str(TIMESTAMP), SIGNATURE.replace("v1,", "v2,"), BODY, TIMESTAMP, "signature"),
            (MSG_ID, str(TIMESTAMP), "", BODY, TIMESTAMP, "signature"),
            (MSG_ID, str(TIMESTAMP), SIGNATURE, BODY, TIMESTAMP + 301, "tolerance"),
            (MSG_ID, str(TIMESTAMP), SIGNATURE, BODY, TIMESTAMP - 301, "tolerance"),
            (MSG_ID, "yesterday", SIGNATURE, BODY, TIMESTAMP, "number"),
        ],
    )
    def test_refusals(self, msg_id: str, ts: str, sig: str, body: str, now: int, why: str) -> None:
        with pytest.raises(signing.SignatureError, match=why):
            signing.verify(SECRET, msg_id, ts, sig, body, now=now)

    def test_new_secrets_are_whsec_and_distinct(self) -> None:
        a, b = signing.new_secret(), signing.new_secret()
        assert a.startswith("whsec_") and a != b
        headers = signing.headers(a, "msg_1", "{}", timestamp=TIMESTAMP)
        assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
        signing.verify(
            a,
            "msg_1",
            headers["webhook-timestamp"],
            headers["webhook-signature"],
            "{}",
            now=TIMESTAMP,
        )
