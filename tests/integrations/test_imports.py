from pathlib import Path

import pytest

from integrations.districts import GeoJsonError, read_districts
from integrations.gtfs import read_feed

DATA = Path(__file__).parent / "data"


def test_geojson_codes_names_parents():
    import json

    rows = read_districts(json.loads((DATA / "districts.geojson").read_text()))
    assert [(c, n, p) for c, n, p, _ in rows] == [
        ("440303", "罗湖区", "440300"),
        ("440304", "福田区", "440300"),
    ]
    with pytest.raises(GeoJsonError):
        read_districts({"type": "FeatureCollection", "features": [{"properties": {}}]})


def test_gtfs_feed_is_read():
    stops, shapes, trips, stop_times = read_feed(DATA / "gtfs")
    assert len(stops) == 5 and len(shapes) == 1 and trips == [("T1", "R1", "SH1")]
    assert [t[2] for t in stop_times] == ["S1", "S2", "S3", "S4"]


def test_district_lookup_is_set_wise():
    import json

    from behaviours.reference import Districts

    rows = read_districts(json.loads((DATA / "districts.geojson").read_text()))
    d = Districts([(c, g) for c, _, _, g in rows])
    assert d.locate([114.05, 114.15, 115.0], [22.55, 22.55, 22.55]) == ["440303", "440304", None]
