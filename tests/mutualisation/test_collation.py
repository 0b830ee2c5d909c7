from mutualisation.collation import french_sort_key


def test_communes_sort_in_french_alphabetical_order():
    names = ["Cournon-d'Auvergne", "Ceyrat", "Cébazat", "Châteaugay", "Chamalières", "Aubière"]
    assert sorted(names, key=french_sort_key) == [
        "Aubière",
        "Cébazat",
        "Ceyrat",
        "Chamalières",
        "Châteaugay",
        "Cournon-d'Auvergne",
    ]


def test_accented_name_sorts_after_its_unaccented_twin():
    assert sorted(["côte", "cote"], key=french_sort_key) == ["cote", "côte"]
