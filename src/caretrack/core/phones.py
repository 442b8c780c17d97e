"""Phone numbers, validated and normalised to E.164 (`+447911123456`) with `phonenumbers`.

It lives in core because accounts (the profile's phone) and notifications (SMS) both need
it, and accounts sits below notifications. A national number ("07911 123456") is read in
the default region (CARETRACK_PHONE_REGION, "GB" unless set); one written with its country
code ("+1 202 555 0143") is read as written, whatever the region.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

MAX_INPUT = 40  # longer than any number written with spaces and brackets
REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)


class PhoneError(ValueError):
    """Not a phone number we can text or call; the message states the rule."""


def normalise(text: str, region: str) -> str:
    """`text` as E.164, or PhoneError naming what is wrong with it."""
    shown = text.strip()[:MAX_INPUT]
    if len(text.strip()) > MAX_INPUT:
        raise PhoneError(f"A phone number has at most {MAX_INPUT} characters.")
    try:
        number = phonenumbers.parse(shown, region)
    except NumberParseException:
        raise PhoneError(
            f"'{shown}' is not a phone number: give it with its country code (+44 7911 123456) "
            f"or as a national number of {region}."
        ) from None
    if not phonenumbers.is_valid_number(number):
        reason = phonenumbers.is_possible_number_with_reason(number)
        problem = ("has too few digits" if reason == ValidationResult.TOO_SHORT else
                   "has too many digits" if reason == ValidationResult.TOO_LONG else
                   "lacks its area code" if reason == ValidationResult.IS_POSSIBLE_LOCAL_ONLY else
                   "has a country code that does not exist" if reason == ValidationResult.INVALID_COUNTRY_CODE else
                   "is not a number in use in its country's numbering plan")
        raise PhoneError(
            f"'{shown}' {problem}: give it with its country code (+44 7911 123456) "
            f"or as a national number of {region}."
        )
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)
