from control.placement import Placement


def test_new_rooms_go_to_the_least_loaded_worker_and_stay_there():
    placement = Placement(2)
    assert placement.worker_for("a") == 0
    placement.joined(0)
    placement.joined(0)
    assert placement.worker_for("b") == 1
    placement.joined(1)
    assert placement.worker_for("a") == 0  # sticky
    assert placement.worker_for("c") == 1


def test_rooms_of_a_worker_that_went_down_move_to_a_worker_that_is_up():
    placement = Placement(2)
    placement.worker_for("a")
    placement.joined(0)
    assert placement.down(0) == ["a"]
    assert placement.worker_for("a") == 1
    placement.up(0)
    assert placement.worker_for("new") == 0


def test_without_any_worker_up_there_is_no_place():
    placement = Placement(1)
    placement.down(0)
    assert placement.worker_for("a") is None


def test_a_room_that_empties_can_be_placed_again():
    placement = Placement(2)
    placement.worker_for("a")
    placement.joined(0)
    placement.left(0, "a")
    placement.room_empty("a")
    placement.joined(0)
    assert placement.worker_for("a") == 1
