"""UID assignment: explicit, else remembered, else the first free from PUID; never reused."""
from nasbox.samba.accounts import assign_uids


def test_first_users_get_uids_from_puid_in_name_order():
    assert assign_uids({"bob": None, "alice": None}, {}, set(), 1000) == {"alice": 1000, "bob": 1001}


def test_remembered_uid_survives_a_user_added_before_it():
    remembered = {"alice": 1000}
    assert assign_uids({"aaron": None, "alice": None}, remembered, set(), 1000) == {"aaron": 1001, "alice": 1000}


def test_uid_of_a_removed_user_is_not_handed_to_another():
    remembered = {"alice": 1000, "gone": 1001}
    assert assign_uids({"alice": None, "zed": None}, remembered, set(), 1000) == {"alice": 1000, "zed": 1002}


def test_explicit_uid_wins_and_is_skipped_by_allocation():
    assert assign_uids({"alice": 1000, "bob": None}, {}, set(), 1000) == {"alice": 1000, "bob": 1001}


def test_explicit_uid_taking_a_remembered_one_moves_the_other_user():
    remembered = {"alice": 1000}
    assert assign_uids({"alice": None, "bob": 1000}, remembered, set(), 1000) == {"alice": 1001, "bob": 1000}


def test_uids_of_image_accounts_are_skipped():
    assert assign_uids({"alice": None}, {}, {1000, 1001}, 1000) == {"alice": 1002}
