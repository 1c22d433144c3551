from control.placement import Placement


def test_new_rooms_go_to_the_least_loaded_worker_and_stay_there():
    placement = Placement(2)
    assert placement.worker_for("a") == 0
    assert placement.worker_for("a") == 0
    assert placement.worker_for("b") == 1
    assert placement.worker_for("a") == 0  # sticky
    assert placement.worker_for("c") == 1
    assert placement.load() == [3, 2]


def test_rooms_of_a_worker_that_went_down_move_to_a_worker_that_is_up():
    placement = Placement(2)
    placement.worker_for("a")
    assert placement.down(0) == ["a"]
    assert placement.worker_for("a") == 1
    placement.up(0)
    assert placement.worker_for("new") == 0


def test_without_any_worker_up_there_is_no_place():
    placement = Placement(1)
    placement.down(0)
    assert placement.worker_for("a") is None


def test_a_room_stays_placed_while_held_or_still_reported_by_its_worker():
    placement = Placement(2)
    placement.worker_for("a")
    placement.reported(0, set())  # the join is under way: not forgotten
    assert placement.placed("a") == 0
    placement.release("a")  # session ended; the participant may be in its grace period
    placement.reported(0, {"a"})
    assert placement.placed("a") == 0
    placement.worker_for("x")  # load elsewhere does not move a placed room
    assert placement.worker_for("a") == 0
    placement.release("a")
    placement.reported(0, set())  # empty now: the room can be placed anew
    assert placement.placed("a") is None
    assert placement.load() == [1, 0]  # "x" is still held on worker 0
