import pytest
from django.core.exceptions import ValidationError

from mutualisation.validators import luhn_is_valid, validate_insee_code, validate_siren


def test_siren_of_clermont_ferrand_is_accepted():
    validate_siren("216301135")


def test_often_cited_wrong_siren_of_clermont_ferrand_is_refused_in_french():
    with pytest.raises(ValidationError) as error:
        validate_siren("216301134")
    assert error.value.code == "siren_checksum"
    assert "SIREN « 216301134 » est invalide" in error.value.messages[0]
    assert "Luhn" in error.value.messages[0]


@pytest.mark.parametrize(
    "value", ["21630113", "2163011350", "21630113A", "216 301 135", "２１６３０１１３５"]
)
def test_siren_must_be_nine_ascii_digits(value):
    with pytest.raises(ValidationError) as error:
        validate_siren(value)
    assert error.value.code == "siren_format"
    assert "9 chiffres" in error.value.messages[0]


@pytest.mark.parametrize(
    ("digits", "valid"),
    [("246300701", True), ("216300145", True), ("216300146", False), ("000000000", True)],
)
def test_luhn_checksum(digits, valid):
    assert luhn_is_valid(digits) is valid


@pytest.mark.parametrize("code", ["63113", "2A004", "2B033", "97411", "01001"])
def test_insee_codes_accepted_including_corsica(code):
    validate_insee_code(code)


@pytest.mark.parametrize("code", ["6311", "631130", "2C004", "AB123", "63 13"])
def test_insee_codes_refused_with_a_french_message(code):
    with pytest.raises(ValidationError) as error:
        validate_insee_code(code)
    assert "code INSEE" in error.value.messages[0]
