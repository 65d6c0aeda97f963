"""The USCC check character (GB 32100-2015) against codes companies publish."""
import pandas as pd
import pytest

from quality import uscc

PUBLISHED = [
    "914403001922038216",  # 华为技术有限公司
    "91330100716105852F",  # 阿里巴巴（中国）有限公司
    "9144030071526726XG",  # 深圳市腾讯计算机系统有限公司
    "91110000100017643K",  # 北京市 (state-owned, 1000… organisation code)
    "91310000132200821H",  # 上海市 registrant
]


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_codes_are_valid(code):
    assert uscc.is_valid(code)


@pytest.mark.parametrize("bad", [
    "914403001922038217",      # one digit of the check character off
    "91440300192203821",       # 17 characters
    "914403001922038216X",     # 19 characters
    "91440300I922038216",      # I is not in the alphabet
    "9144030019220382 6",      # a space
    "", None,
])
def test_broken_codes_are_invalid(bad):
    assert not uscc.is_valid(bad)


def test_non_business_registrant_with_letters_in_the_first_eight_is_valid():
    body = "Y1440300MA5DXXXX".replace("X", "0")[:17].ljust(17, "0")
    code = body + uscc.check_character(body)
    assert uscc.is_valid(code)


def test_valid_mask_keeps_missing_codes_apart_from_wrong_ones():
    mask = uscc.valid_mask(pd.Series([PUBLISHED[0], "914403001922038217", None]))
    assert mask.tolist()[:2] == [True, False] and pd.isna(mask.iloc[2])
