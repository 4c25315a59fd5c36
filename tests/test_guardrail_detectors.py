"""The PII and secrets detectors: what each entity finds and refuses, the find/hold
contract (guardrails/detectors/base.py), and that `hold` makes stream release safe.

The hold property: for any text and any split, with h = hold(prefix), the findings of
the whole text that start before len(prefix) - h are exactly the prefix's findings
there, so a stream may release prefix[:len - h] once it is redacted.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrails.corpus.fakes import fake_secret
from guardrails.detectors import pem
from guardrails.detectors.base import Finding
from guardrails.detectors.pii import ENTITIES, MAX_HOLD, PiiDetector
from guardrails.detectors.secrets import ENTITIES as SECRET_ENTITIES
from guardrails.detectors.secrets import MAX_TOKEN, SecretsDetector

PII = PiiDetector(ENTITIES)
SECRETS = SecretsDetector()


def found(detector: PiiDetector | SecretsDetector, text: str) -> list[tuple[str, str]]:
    return [(f.entity, text[f.start : f.end]) for f in detector.find(text)]


def hold_violations(detector: PiiDetector | SecretsDetector, text: str) -> list[int]:
    """The split points (1-character chunks: every one) where releasing
    prefix[:len - hold] would not be safe."""
    whole = detector.find(text)
    bad = []
    for k in range(len(text) + 1):
        prefix = text[:k]
        safe = k - detector.hold(prefix)
        if [f for f in whole if f.start < safe] != [f for f in detector.find(prefix) if f.start < safe]:
            bad.append(k)
    return bad


# --- the contract ----------------------------------------------------------------------


def test_unknown_entity_is_refused_naming_it_and_the_known_ones() -> None:
    with pytest.raises(ValueError) as e:
        PiiDetector(["email", "passport"])
    assert "'passport'" in str(e.value) and all(name in str(e.value) for name in ENTITIES)
    with pytest.raises(ValueError, match="'jwt'.*openai_key"):
        SecretsDetector(["jwt"])


def test_findings_are_sorted_non_overlapping_spans_without_the_text() -> None:
    text = "b@example.com 0912345678 a@example.org 4111 1111 1111 1111 10.0.0.1 " + fake_secret("openai_key", 1)
    for detector in (PII, SECRETS):
        findings = detector.find(text)
        assert findings == sorted(findings, key=lambda f: f.start)
        assert all(a.end <= b.start for a, b in zip(findings, findings[1:], strict=False))
        assert all(isinstance(f, Finding) and not hasattr(f, "text") for f in findings)
    assert [e for e, _ in found(PII, text)] == ["email", "phone", "email", "credit_card", "ip_address"]


def test_only_the_chosen_entities_are_found() -> None:
    text = "mail me at an.nguyen@gmail.com or call 0912 345 678"
    assert found(PiiDetector(["phone"]), text) == [("phone", "0912 345 678")]
    assert found(PiiDetector(["email"]), text) == [("email", "an.nguyen@gmail.com")]
    assert PiiDetector([]).find(text) == [] and PiiDetector([]).hold(text) == 0
    key = fake_secret("github_token", 2)
    assert found(SecretsDetector(["openai_key"]), f"token {key}") == []


# --- per entity ------------------------------------------------------------------------

POSITIVES = [
    # email
    ("Send it to john.doe@example.com.", [("email", "john.doe@example.com")]),
    ("Reply-To: <ops-alerts+prod@status.acme-corp.co.uk>", [("email", "ops-alerts+prod@status.acme-corp.co.uk")]),
    ("Email: NGUYEN.VAN.A@GMAIL.COM, cảm ơn", [("email", "NGUYEN.VAN.A@GMAIL.COM")]),
    ("mailto:hr@startup.io?subject=hi", [("email", "hr@startup.io")]),
    # phone: Vietnamese mobiles and landlines, +84 forms, hotlines
    ("SĐT: 0912345678", [("phone", "0912345678")]),
    ("Gọi 0912 345 678 hoặc 0987.654.321", [("phone", "0912 345 678"), ("phone", "0987.654.321")]),
    ("+84 912 345 678 / +84912345678", [("phone", "+84 912 345 678"), ("phone", "+84912345678")]),
    ("(+84) 91 234 5678 and 0084 912 345 678", [("phone", "(+84) 91 234 5678"), ("phone", "0084 912 345 678")]),
    ("Văn phòng (028) 3823 4567, Đà Nẵng 0236.3822.123", [("phone", "(028) 3823 4567"), ("phone", "0236.3822.123")]),
    ("Hotline 1900 6035, tổng đài 1800 599 920", [("phone", "1900 6035"), ("phone", "1800 599 920")]),
    ("Người gửi: 84 912 345 678", [("phone", "84 912 345 678")]),
    ("Số điện thoại: 0123 456 789", [("phone", "0123 456 789")]),  # not allocated, but after a phone word
    # phone: other countries
    ("Call (212) 555-0123 or 1-800-555-0199", [("phone", "(212) 555-0123"), ("phone", "1-800-555-0199")]),
    ("US +1 (650) 253-0000, UK +44 (0)20 7946 0958", [
        ("phone", "+1 (650) 253-0000"), ("phone", "+44 (0)20 7946 0958")]),
    ("Tokyo +81 3-5555-1234, Singapore +65 6123 4567", [("phone", "+81 3-5555-1234"), ("phone", "+65 6123 4567")]),
    ("London desk 020 7946 0958", [("phone", "020 7946 0958")]),
    ("Call 123-456-7890 now", [("phone", "123-456-7890")]),
    # credit cards
    ("Card 4111 1111 1111 1111 exp 12/26", [("credit_card", "4111 1111 1111 1111")]),
    ("cc=4242424242424242&exp=1226", [("credit_card", "4242424242424242")]),
    ("MC 5555-5555-5555-4444, 2-series 2223 0031 2200 3222", [
        ("credit_card", "5555-5555-5555-4444"), ("credit_card", "2223 0031 2200 3222")]),
    ("Amex 3782 822463 10005 and 378282246310005", [
        ("credit_card", "3782 822463 10005"), ("credit_card", "378282246310005")]),
    ("JCB 3530111333300000, UnionPay 6200000000000005", [
        ("credit_card", "3530111333300000"), ("credit_card", "6200000000000005")]),
    ("Diners 3056 930902 5904, Discover 6011 1111 1111 1117", [
        ("credit_card", "3056 930902 5904"), ("credit_card", "6011 1111 1111 1117")]),
    # IBAN
    ("IBAN DE89 3704 0044 0532 0130 00.", [("iban", "DE89 3704 0044 0532 0130 00")]),
    ("GB82WEST12345698765432 and NL91 ABNA 0417 1643 00", [
        ("iban", "GB82WEST12345698765432"), ("iban", "NL91 ABNA 0417 1643 00")]),
    ("FR76 3000 6000 0112 3456 7890 189, NO9386011117947", [
        ("iban", "FR76 3000 6000 0112 3456 7890 189"), ("iban", "NO9386011117947")]),
    # US SSN
    ("SSN 123-45-6789", [("us_ssn", "123-45-6789")]),
    ("Applicant 536-22-1234 was verified", [("us_ssn", "536-22-1234")]),
    ("social security number 123456789; SSN# 432 12 3456", [("us_ssn", "123456789"), ("us_ssn", "432 12 3456")]),
    # Vietnamese identity numbers
    ("Số CCCD: 001099012345", [("vn_cccd", "001099012345")]),
    ("căn cước công dân số 038095012345, cấp 2021", [("vn_cccd", "038095012345")]),
    ("Citizen ID 079203004567 (born 2003)", [("vn_cccd", "079203004567")]),
    ("Khách đọc số căn cước 001 099 012 345", [("vn_cccd", "001 099 012 345")]),
    ("ID: 048301006789", [("vn_cccd", "048301006789")]),
    ("Số CMND: 025123456, cấp tại Hà Nội", [("vn_cmnd", "025123456")]),
    ("chứng minh nhân dân số 271234567; CMT 164123987", [("vn_cmnd", "271234567"), ("vn_cmnd", "164123987")]),
    ("CMND 123456789 và CCCD 001099012345", [("vn_cmnd", "123456789"), ("vn_cccd", "001099012345")]),
    # IP addresses
    ("ssh root@10.0.0.5 -p 22; curl http://192.168.1.10:8080/", [
        ("ip_address", "10.0.0.5"), ("ip_address", "192.168.1.10")]),
    ("Allow 10.0.0.0/8 and 203.0.113.195", [("ip_address", "10.0.0.0"), ("ip_address", "203.0.113.195")]),
    ("IP=10.0.0.1 ip:10.0.0.2", [("ip_address", "10.0.0.1"), ("ip_address", "10.0.0.2")]),
    ("v6 2001:db8::1, [fe80::1ff:fe23:4567:890a]:443, ::1", [
        ("ip_address", "2001:db8::1"), ("ip_address", "fe80::1ff:fe23:4567:890a"), ("ip_address", "::1")]),
    ("mapped ::ffff:192.0.2.1 and 2001:0db8:85a3:0000:0000:8a2e:0370:7334", [
        ("ip_address", "::ffff:192.0.2.1"), ("ip_address", "2001:0db8:85a3:0000:0000:8a2e:0370:7334")]),
]  # fmt: skip

NEGATIVES = [
    # order numbers, prices, dates, versions, timestamps
    "Order #20241202-5531 and mã đơn hàng 240912345678",
    "Giá 1.250.000 đ, $1,299.00, 2.500.000 VND, 18.000.000 đồng, 12 500 000 VND, €1.299,00",
    "Dates 02/12/2026, 2026-12-02, 02.12.2026 and 2026/12/02",
    "v1.2.3, Python 3.11.7, version 1.2.3.4, v10.0.0.1, firmware 2.4.1.8, numpy==1.26.4.0",
    "User-Agent: Chrome/120.0.6099.109 Safari/537.36",
    "created_at=1733129876 ts=1733129876543",
    # identifiers
    "request 550e8400-e29b-41d4-a716-446655440000 commit d41d8cd98f00b204e9800998ecf8427e",
    "ISBN 978-3-16-148410-0 and ISBN-10 0-306-40615-2",
    "MST 0312345678, STK 0071000123456, mã OTP 482913",
    "Order 4111111111111111 was placed twice",  # a valid card number, but an order number here
    "Mã vận đơn 001099012345, mã giao dịch 079203004567",  # CCCD-shaped, not identity numbers here
    "The file has 123456789 rows",  # 9 digits without an identity word
    "SKU 123456789 and employee id 025123456",
    "Invalid SSNs 000-12-3456, 666-12-3456, 912-34-5678, 123-00-4567, 123-45-0000",
    "Bad checksums: 4111 1111 1111 1112 and DE89 3704 0044 0532 0130 01",
    # short codes, code, addresses that are not
    "C4 S3 EKS AWS GPU T4 A100 H100 EC2 K8S",
    "x = arr[::2]; std::vector<int> v; ts 12:30:45; MAC 00:1A:2B:3C:4D:5E",
    "user@localhost, admin@db.internal, icon@2x.png, lodash@4.17.21, git@github.com:org/repo.git",
    "https://app:hunter2@db.example.com/ uses a URL password",
    "OID 1.3.6.1.4.1.311 and 999.10.10.10 and 192.168.1",
    "1990-2020, seeds 20240101 20240102, timeout 1000000 ms",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVES)
def test_each_entity_is_found_with_its_exact_span(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(PII, text) == expected


@pytest.mark.parametrize("text", NEGATIVES)
def test_hard_negatives_are_not_pii(text: str) -> None:
    assert found(PII, text) == []


def test_context_reads_the_nearest_keyword_before_the_number() -> None:
    text = "CCCD 079203004567, mã đơn hàng 079203004568"
    assert found(PII, text) == [("vn_cccd", "079203004567")]


# --- secrets ---------------------------------------------------------------------------


@pytest.mark.parametrize("entity", [e for e in SECRET_ENTITIES if e != "aws_secret_key"])
def test_each_kind_of_credential_is_found_whole(entity: str) -> None:
    for seed in range(5):
        secret = fake_secret(entity, seed)
        assert found(SECRETS, f"key: {secret} (rotated)") == [(entity, secret)]


def test_an_aws_secret_key_is_found_after_its_name_only() -> None:
    secret = fake_secret("aws_secret_key", 1)
    assert found(SECRETS, f"aws_secret_access_key = {secret}\n") == [("aws_secret_key", secret)]
    assert found(SECRETS, f'{{"SecretAccessKey": "{secret}"}}') == [("aws_secret_key", secret)]
    assert found(SECRETS, f"checksum {secret}") == []


def test_key_shaped_test_strings_built_by_concatenation_are_found() -> None:
    key = "sk-" + "A1b2" * 12
    assert found(SECRETS, f"OPENAI_API_KEY={key}") == [("openai_key", key)]
    assert found(SECRETS, "sk-ant-api03-" + "Zx9Q" * 24)[0][0] == "anthropic_key"


def test_a_private_key_block_is_one_finding_escaped_or_truncated() -> None:
    block = fake_secret("private_key", 4)
    escaped = fake_secret("private_key_escaped", 4)
    assert found(SECRETS, f"here:\n{block}\nthanks") == [("private_key", block)]
    assert found(SECRETS, f'{{"private_key": "{escaped}\\n"}}') == [("private_key", escaped)]
    truncated = block[: block.index("-----END")].rstrip()
    assert found(SECRETS, truncated + "\nthat is all I have") == [("private_key", truncated)]


SECRET_NEGATIVES = [
    "OPENAI_API_KEY=sk-... (use your own key)",
    "sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    'api_key = "sk-your-key-here"',
    "sk-proj-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx and sk-ant-api03-XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx SLACK=xoxb-your-bot-token",
    'stripe.api_key = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"',
    "We use sk-learn pipelines and the task-scheduler-for-background-jobs-v2 module.",
    "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
    "The file starts with -----BEGIN OPENSSH PRIVATE KEY----- and ends with the END line.",
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPH\n-----END PUBLIC KEY-----",
    "C4 S3 EKS AWS GPU and ASIA-PACIFIC",
]


@pytest.mark.parametrize("text", SECRET_NEGATIVES)
def test_placeholders_and_published_examples_are_not_secrets(text: str) -> None:
    assert found(SECRETS, text) == []


def test_a_key_inside_a_longer_word_is_not_a_key() -> None:
    body = fake_secret("openai_key", 3).removeprefix("sk-")
    assert found(SECRETS, f"risk-{body}") == [] and found(SECRETS, f"sk-{body}x_y") != []


# --- hold ------------------------------------------------------------------------------

HOLD_TEXTS = [
    "Email me at john.doe@example.com or call 0912 345 678.",
    "SĐT: 0912345678, CCCD: 001099012345; CMND 025123456",
    "Card 4111 1111 1111 1111 exp 12/26; ts 1733129876543 and order #20241202-5531",
    "IBAN DE89 3704 0044 0532 0130 00 and GB82WEST12345698765432.",
    "SSN 123-45-6789, ssn: 078051120, server 192.168.1.10:8080, v1.2.3.4",
    "IPv6 2001:db8::1 and fe80::1%eth0, time 12:30:45, [::1]:80",
    "Call (212) 555-0123 or +1 202 555 0147 or +44 20 7946 0958, hotline 1900 1234",
    "git@github.com:org/repo.git https://u:p@host.com/ x@y.comz a@b.co.",
    "0912 345 678 0987 654 321 DE89 3704 0044 0532 0130 01 1.250.000 đ",
]


@pytest.mark.parametrize("text", HOLD_TEXTS)
def test_pii_hold_makes_every_split_point_safe(text: str) -> None:
    assert hold_violations(PII, text) == []


def _secret_texts() -> list[str]:
    texts = [f"export KEY={fake_secret(e, 7)} # done" for e in SECRET_ENTITIES if e != "aws_secret_key"]
    texts.append(f"aws_secret_access_key = {fake_secret('aws_secret_key', 7)}\nregion = x")
    texts.append(f'{{"private_key": "{fake_secret("private_key_escaped", 7)}\\n", "x": 1}}')
    block = fake_secret("private_key", 8)
    texts.append(block[: block.index("-----END")] + "\nThat is my key, truncated. sk-")
    return texts


@pytest.mark.parametrize("text", _secret_texts())
def test_secrets_hold_makes_every_split_point_safe(text: str) -> None:
    assert hold_violations(SECRETS, text) == []


FRAGMENTS = [
    "0", "1", "9", "0912", "345", "678", "84", "+", "(", ")", " ", ".", "-", "/", ",", ":", "::", "@", "a", "Z",
    "john", ".doe", ".com", ".vn", "gmail", "sk-", "AKIA", "ghp_", "xoxb-", "AIza", "DE89", "GB82", "WEST", "3704",
    "CCCD ", "CMND ", "SSN ", "SĐT ", "order ", "v", "version ", "192.168.", "10.0.0.1", "fe80", "2001:db8", "4111",
    "1111", "-----BEGIN ", "PRIVATE KEY-----", "-----END ", "\n", "\\n", "a1B2c3D4e5F6g7H8", "ễ", "#", "$", "đ",
    "==", "://", "git", "123-45-6789", "001099012345", "0912345678", "1.250.000",
]  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join))
def test_hold_is_safe_on_generated_text(text: str) -> None:
    assert hold_violations(PII, text) == []
    assert hold_violations(SECRETS, text) == []


def test_hold_is_zero_on_a_safe_tail_and_covers_a_suspicious_one() -> None:
    assert PII.hold("Thanks, see you tomorrow, ") == 0
    assert PII.hold("Thanks, see you tomorrow.") == len("tomorrow.")  # "tomorrow.bob@x.com" may follow
    assert PII.hold("my number is 0912 34") == len("0912 34")
    assert PII.hold("write to john.doe@exa") == len("john.doe@exa")
    assert PII.hold("IBAN DE89 37") == len("DE89 37")
    assert SECRETS.hold("the key is sk-ab") == len("sk-ab")
    assert SECRETS.hold("the key is s") == 1
    assert SECRETS.hold("Thanks, see you tomorrow.") == 0


def test_hold_is_bounded_and_reads_only_the_tail() -> None:
    long_digits = "1 " * 5000
    assert PII.hold(long_digits) <= MAX_HOLD
    assert PII.hold("a" * 10_000 + "@" + "b" * 10_000) <= MAX_HOLD
    assert SECRETS.hold("sk-" + "A1b2" * 5000) == 0  # too long to be a key: nothing to wait for
    assert SECRETS.hold("x sk-" + "A1b2" * 30) <= MAX_TOKEN
    big = "Lorem ipsum dolor sit amet. " * 200_000 + "call 0912"  # 5.6 MB
    assert PII.hold(big) == PII.hold(big[-MAX_HOLD - 1 :]) == len("0912")
    start = time.perf_counter()
    for _ in range(100):
        PII.hold(big)
        SECRETS.hold(big)
    assert time.perf_counter() - start < 0.5  # O(tail): a scan of 5.6 MB would take far longer


def test_an_open_private_key_is_held_from_its_header_up_to_a_bound() -> None:
    block = fake_secret("private_key", 5)
    open_part = "see:\n" + block[: block.index("-----END") + 7]
    assert SECRETS.hold(open_part) == len(open_part) - len("see:\n")
    assert SECRETS.hold("see:\n" + block + "\nthanks") == 0
    assert SECRETS.hold("-----BEGIN PRIVATE KEY-----\n" + "A" * (2 * pem.MAX_BLOCK)) <= pem.MAX_HOLD


# --- speed -----------------------------------------------------------------------------

PROSE = (
    "In 2024 our team of 12 engineers migrated 3 services to the new cluster. The migration took about 6 weeks, "
    "and we reduced p95 latency by 35% while cutting costs. Please summarize the lessons learned for the next "
    "quarterly review, focusing on what went well, what did not, and which risks remain open for Q3. "
)


def test_a_2kb_prose_prompt_is_scanned_in_well_under_a_millisecond() -> None:
    text = (PROSE * 10)[:2048]
    for detector in (PII, SECRETS):
        best = min(_timed(detector.find, text) for _ in range(5))
        # Measured ~25 us (PII) and ~5 us (secrets) on the development machine; 10x slack for CI.
        assert best < 0.0005, f"{detector!r}: {best * 1e6:.0f} us"


def _timed(fn, text: str, n: int = 200) -> float:  # noqa: ANN001
    start = time.perf_counter()
    for _ in range(n):
        fn(text)
    return (time.perf_counter() - start) / n
