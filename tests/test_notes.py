"""normalize_note(): the published sample, lenient variants, and the payloads it must refuse."""

from __future__ import annotations

import json
import pickle
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from pgy_spider.notes import KOL_FIELDS, NOTE_FIELDS, InvalidNote, normalize_note
from tests.support.sample import FETCHED_AT, NOTE_ID, SAMPLE_DATA, sample_data

EXPECTED_KOL: dict[str, Any] = {
    "userId": "62060e8c0000000010008f55",
    "nickName": "曹操来了",
    "fansNum": 498837,
    "cooperType": 1,
    "picturePrice": 0,
    "videoPrice": 200000,
    "currentLevel": 2,
    "location": "北京",
    "gender": "男",
    "contentTags": [{"taxonomy1Tag": "文化艺术", "taxonomy2Tags": ["科普"]}],
    "clickMidNum": 70177,
    "interMidNum": 2589,
    "mEngagementNum": 2925,
    "kolType": 0,
}

EXPECTED_SAMPLE: dict[str, Any] = {
    "noteId": NOTE_ID,
    "noteLink": SAMPLE_DATA["noteLink"],
    "noteType": "video",
    "type": 2,
    "title": "",
    "content": SAMPLE_DATA["content"],
    "topics": ["电影狙击手", "曹操来了", "明星"],
    "userId": "62060e8c0000000010008f55",
    "name": "曹操来了",
    "redId": None,
    "headPhoto": SAMPLE_DATA["headPhoto"],
    "createTime": 1707127804000,
    "updateTime": 1707142186000,
    "userUpdateTime": 1707127804000,
    "createdAt": "2024-02-05T10:10:04Z",
    "updatedAt": "2024-02-05T14:09:46Z",
    "userUpdatedAt": "2024-02-05T10:10:04Z",
    "createTimeText": "2024-02-05 18:10",
    "impNum": 0,
    "likeNum": 0,
    "favNum": 0,
    "cmtNum": 0,
    "readNum": 0,
    "shareNum": 0,
    "followCnt": 0,
    "metricsAllZero": True,
    "imageCount": 1,
    "imageUrls": [SAMPLE_DATA["imagesList"][0]["url"]],
    "videoUrl": SAMPLE_DATA["videoInfo"]["videoUrl"],
    "videoDuration": 23,
    "kol": EXPECTED_KOL,
    "fetchedAt": "2026-11-27T08:30:15Z",
}

METRICS = ("impNum", "likeNum", "favNum", "cmtNum", "readNum", "shareNum", "followCnt")


def normalize(data: object, requested_id: str = NOTE_ID) -> dict[str, Any]:
    return normalize_note(data, requested_id=requested_id, fetched_at=FETCHED_AT)


def assert_plain_json(value: object) -> None:
    """Only the types the brief allows, all the way down (no datetimes, tuples, models)."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str
            assert_plain_json(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain_json(item)
    else:
        assert value is None or type(value) in (str, int, float, bool), type(value)


# --- the published sample ---------------------------------------------------------------------


def test_sample_normalizes_to_expected_values() -> None:
    note = normalize(sample_data())
    assert {k: v for k, v in note.items() if k != "raw"} == EXPECTED_SAMPLE


def test_keys_are_exactly_note_fields_in_order() -> None:
    note = normalize(sample_data())
    assert tuple(note) == NOTE_FIELDS
    assert tuple(note["kol"]) == KOL_FIELDS


def test_raw_is_the_whole_untouched_data_object() -> None:
    data = sample_data()
    note = normalize(data)
    assert note["raw"] is data
    assert note["raw"] == SAMPLE_DATA  # nothing dropped, nothing rewritten


def test_output_is_json_serializable_plain_types() -> None:
    note = normalize(sample_data())
    assert_plain_json(note)
    assert json.loads(orjson.dumps(note)) == json.loads(json.dumps(note, ensure_ascii=False))


def test_requested_id_is_compared_case_insensitively_and_output_lower_case() -> None:
    data = sample_data()
    data["noteId"] = NOTE_ID.upper()
    note = normalize(data, requested_id=NOTE_ID[:12].upper() + NOTE_ID[12:])
    assert note["noteId"] == NOTE_ID
    assert note["raw"]["noteId"] == NOTE_ID.upper()


# --- lenient where the real API is --------------------------------------------------------------


def test_minimal_data_with_only_note_id() -> None:
    note = normalize({"noteId": NOTE_ID})
    assert note["noteId"] == NOTE_ID
    assert note["topics"] == [] and note["imageUrls"] == [] and note["imageCount"] == 0
    assert note["kol"] is None and note["videoDuration"] is None
    assert note["createdAt"] is None and note["createTime"] is None
    assert note["metricsAllZero"] is True  # no metric at all: nothing trustworthy either
    assert note["fetchedAt"] == "2026-11-27T08:30:15Z"
    assert_plain_json(note)


def test_null_heavy_data() -> None:
    data = sample_data()
    for key in (
        "noteLink",
        "userId",
        "headPhoto",
        "name",
        "redId",
        "type",
        "title",
        "content",
        "imagesList",
        "videoInfo",
        "createTime",
        "userInfo",
        *METRICS,
    ):
        data[key] = None
    data["time"] = {"createTime": None, "updateTime": 1707142186000, "userUpdateTime": None}
    note = normalize(data)
    assert note["noteType"] is None and note["type"] is None
    assert note["topics"] == [] and note["imageCount"] == 0 and note["imageUrls"] == []
    assert note["videoUrl"] is None and note["videoDuration"] is None and note["kol"] is None
    assert note["createTime"] is None and note["createdAt"] is None
    assert note["updatedAt"] == "2024-02-05T14:09:46Z"
    assert note["createTimeText"] is None
    assert all(note[name] is None for name in METRICS)
    assert note["metricsAllZero"] is True


def test_null_nested_fields() -> None:
    data = sample_data()
    data["time"] = None
    data["videoInfo"] = {"videoUrl": None, "meta": None}
    data["imagesList"] = [{"url": None, "original": None}, {"url": None, "original": "o.jpg"}]
    user = data["userInfo"]
    user.update({"contentTags": None, "fansNum": None, "mEngagementNum": None, "gender": None})
    note = normalize(data)
    assert note["createTime"] is None and note["updatedAt"] is None
    assert note["videoUrl"] is None and note["videoDuration"] is None
    assert note["imageCount"] == 2 and note["imageUrls"] == ["o.jpg"]
    assert note["kol"]["contentTags"] == [] and note["kol"]["fansNum"] is None
    assert note["kol"]["mEngagementNum"] == 2925  # fell back to mengagementNum


def test_extra_fields_and_longer_lists() -> None:
    data = sample_data()
    data["brandNewField"] = {"nested": [1, 2, 3]}
    data["imagesList"][0]["newImageField"] = "x"
    data["imagesList"] += [
        {"url": "http://example/2.jpg", "original": "http://example/2"},
        {"url": "", "original": "http://example/3"},  # empty url: use the original
    ]
    data["videoInfo"]["meta"]["codec"] = "h265"
    data["userInfo"]["contentTags"].append(
        {"taxonomy1Tag": "美食", "taxonomy2Tags": ["探店", "家常菜"], "weight": 0.5}
    )
    data["userInfo"]["somethingNew"] = [None]
    data["time"]["publishTime"] = 1707127804000
    note = normalize(data)
    assert note["imageCount"] == 3
    assert note["imageUrls"][1:] == ["http://example/2.jpg", "http://example/3"]
    assert note["kol"]["contentTags"][1] == {
        "taxonomy1Tag": "美食",
        "taxonomy2Tags": ["探店", "家常菜"],
    }
    assert note["raw"]["brandNewField"] == {"nested": [1, 2, 3]}  # kept in raw only
    assert "brandNewField" not in note


def test_numeric_strings_are_coerced() -> None:
    data = sample_data()
    data["likeNum"] = "12"
    data["type"] = "1"
    data["time"]["createTime"] = "1707127804000"
    data["userInfo"]["fansNum"] = "498837"
    data["videoInfo"]["meta"]["duration"] = "23"
    note = normalize(data)
    assert note["likeNum"] == 12 and note["type"] == 1 and note["noteType"] == "picture"
    assert note["createTime"] == 1707127804000 and note["createdAt"] == "2024-02-05T10:10:04Z"
    assert note["kol"]["fansNum"] == 498837 and note["videoDuration"] == 23
    assert note["metricsAllZero"] is False


def test_numbers_in_text_fields_become_text() -> None:
    data = sample_data()
    data["redId"] = 123456789
    assert normalize(data)["redId"] == "123456789"


@pytest.mark.parametrize(("type_", "expected"), [(1, "picture"), (2, "video"), (3, None)])
def test_note_type(type_: int, expected: str | None) -> None:
    data = sample_data()
    data["type"] = type_
    note = normalize(data)
    assert note["noteType"] == expected and note["type"] == type_


def test_metrics_all_zero_flag() -> None:
    data = sample_data()
    data["likeNum"] = None  # missing ones do not count
    assert normalize(data)["metricsAllZero"] is True
    data["cmtNum"] = 3
    note = normalize(data)
    assert note["metricsAllZero"] is False
    assert note["impNum"] == 0 and note["likeNum"] is None  # 0 stays 0, null stays null


def test_topics_unique_in_order_and_only_topic_tags() -> None:
    data = sample_data()
    data["content"] = "#b[话题]# text #a[话题]##b[话题]# #not a topic# #c[话题]#\n#[话题]#"
    assert normalize(data)["topics"] == ["b", "a", "c"]


def test_time_with_milliseconds_and_fractional_duration() -> None:
    data = sample_data()
    data["time"]["updateTime"] = 1707142186123
    data["videoInfo"]["meta"]["duration"] = 23.5
    note = normalize(data)
    assert note["updatedAt"] == "2024-02-05T14:09:46.123Z"
    assert note["videoDuration"] == 23.5


def test_fetched_at_is_converted_to_utc() -> None:
    china = timezone(timedelta(hours=8))
    fetched = datetime(2026, 11, 27, 16, 30, 15, 250_000, tzinfo=china)
    note = normalize_note(sample_data(), requested_id=NOTE_ID, fetched_at=fetched)
    assert note["fetchedAt"] == "2026-11-27T08:30:15.250Z"


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds only when there are any: the oracle."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    millis = moment.microsecond // 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def test_timestamps_match_datetime_over_their_whole_range() -> None:
    # Dates are formatted once per day (a cache) and the time of day by arithmetic: checked
    # against datetime's own calendar from 1970 to the year 9999, either side of midnight.
    rnd = random.Random(7)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    values = [0, 1, 999, 1000, 86_399_999, 86_400_000, 951_782_400_000, 253_402_300_799_999]
    values += [rnd.randrange(253_402_300_800_000) for _ in range(3000)]
    for value in values:
        data = {"noteId": NOTE_ID, "time": {"createTime": value}}
        note = normalize_note(data, requested_id=NOTE_ID, fetched_at=FETCHED_AT)
        assert note["createdAt"] == _iso(epoch + timedelta(milliseconds=value)), value
    for _ in range(3000):
        zone = timezone(timedelta(minutes=rnd.randrange(-720, 840)))
        moment = (
            epoch + timedelta(microseconds=rnd.randrange(253_400_000_000_000_000))
        ).astimezone(zone)
        note = normalize_note({"noteId": NOTE_ID}, requested_id=NOTE_ID, fetched_at=moment)
        assert note["fetchedAt"] == _iso(moment), moment


def test_naive_fetched_at_is_a_programming_error_not_an_invalid_note() -> None:
    with pytest.raises(ValueError, match="timezone-aware") as info:
        normalize_note(sample_data(), requested_id=NOTE_ID, fetched_at=datetime(2026, 1, 1))
    assert not isinstance(info.value, InvalidNote)


# --- strict where it matters ---------------------------------------------------------------------


def with_changes(**changes: Any) -> dict[str, Any]:
    data = sample_data()
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param(None, "data", id="null"),
        pytest.param([SAMPLE_DATA], "data", id="list"),
        pytest.param("65c0b3fc000000002c037a49", "data", id="string"),
        pytest.param(42, "data", id="number"),
        pytest.param(with_changes(noteId=None), "noteId", id="noteId-null"),
        pytest.param(with_changes(noteId="65c0b3fc"), "noteId", id="noteId-short"),
        pytest.param(with_changes(noteId="zzc0b3fc000000002c037a49"), "noteId", id="noteId-hex"),
        pytest.param(with_changes(likeNum="lots"), "likeNum", id="likeNum-lots"),
        pytest.param(with_changes(likeNum=True), "likeNum", id="likeNum-bool"),
        pytest.param(with_changes(likeNum=1.5), "likeNum", id="likeNum-fraction"),
        pytest.param(with_changes(impNum=[1]), "impNum", id="impNum-list"),
        pytest.param(with_changes(type="video"), "type", id="type-text"),
        pytest.param(with_changes(time="yesterday"), "time", id="time-text"),
        pytest.param(with_changes(time={"createTime": "yesterday"}), "time.createTime", id="tc"),
        pytest.param(with_changes(time={"updateTime": -1}), "time.updateTime", id="negative"),
        pytest.param(with_changes(time={"updateTime": 10**20}), "time.updateTime", id="huge"),
        pytest.param(with_changes(imagesList={"url": "x"}), "imagesList", id="images-object"),
        pytest.param(with_changes(userInfo="someone"), "userInfo", id="userInfo-text"),
    ],
)
def test_invalid_data_is_rejected(data: object, field: str) -> None:
    with pytest.raises(InvalidNote) as info:
        normalize(data)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_missing_note_id_is_rejected() -> None:
    data = sample_data()
    del data["noteId"]
    with pytest.raises(InvalidNote, match=r"^noteId: Field required"):
        normalize(data)


def test_nested_error_names_the_nested_field() -> None:
    data = sample_data()
    data["userInfo"]["fansNum"] = "lots"
    with pytest.raises(InvalidNote) as info:
        normalize(data)
    assert info.value.field == "userInfo.fansNum"
    assert "valid integer" in info.value.reason


def test_wrong_note_id_is_rejected() -> None:
    with pytest.raises(InvalidNote, match="does not match") as info:
        normalize(sample_data(), requested_id="65c0b3fc000000002c037a4a")
    assert info.value.field == "noteId"


def test_message_is_short_and_never_contains_the_payload() -> None:
    data = with_changes(likeNum="lots", cmtNum="many", content="秘密" * 500)
    with pytest.raises(InvalidNote) as info:
        normalize(data)
    message = str(info.value)
    reason = "Input should be a valid integer, unable to parse string as an integer"
    assert message == f"likeNum: {reason} (+1 more)"
    assert "lots" not in message and "秘密" not in message


def test_invalid_note_is_a_value_error_and_pickles() -> None:
    error = InvalidNote("likeNum", "not a number")
    assert isinstance(error, ValueError)
    copied = pickle.loads(pickle.dumps(error))
    assert (copied.field, copied.reason, str(copied)) == ("likeNum", "not a number", str(error))
