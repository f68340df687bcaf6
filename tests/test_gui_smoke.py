from tests.conftest import wait_for_run


def test_window_runs_a_prompt_and_shows_every_kind_of_step(window, qtbot):
    session = window.session
    window.prompt.set_text("The cat sat on the mat.")
    wait_for_run(qtbot, session)
    for index in range(len(session.steps)):
        session.select_step(index)
        view = window.stage_panel.current_view()
        assert view is not None and session.step.kind in view.kinds
