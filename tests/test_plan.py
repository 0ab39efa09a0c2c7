"""The planner (issue 27 item 6): what winning back customers, raising the repeat rate or stopping
a campaign is worth over the next 12 months, with an 80 % range checked against simulation."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from crm_helpers.analyses import clv, romi
from crm_helpers.analyses.plan import PlanError, plan_effect, simulate_win_back
from crm_helpers.cli import main

from support import DEMO_END

AS_OF = "2026-10-31"


def test_win_back_effect_grows_with_the_share_and_zero_gives_zero(demo_db):
    effects = [plan_effect(demo_db, as_of=AS_OF, win_back=share) for share in (0.0, 0.1, 0.2, 0.4)]
    assert all(e.ok for e in effects)
    assert effects[0].effect == 0 and effects[0].low == effects[0].high == 0
    points = [e.effect for e in effects]
    assert points[1] > 0 and points == sorted(points) and len(set(points)) == 4
    assert points[2] == pytest.approx(2 * points[1]) and points[3] == pytest.approx(4 * points[1])
    for e in effects[1:]:
        assert e.low <= e.effect <= e.high and e.low < e.high
        assert "customers probably lost" in e.sentence and e.currency in e.sentence


def test_repeat_points_effect_grows_and_is_one_repeat_order_per_extra_buyer(demo_db):
    small, big = (plan_effect(demo_db, as_of=AS_OF, repeat_points=p) for p in (5, 20))
    assert small.ok and big.ok
    assert 0 < small.effect < big.effect == pytest.approx(4 * small.effect)
    assert small.low <= small.effect <= small.high


def test_stopping_a_campaign_saves_its_cost_less_the_revenue_it_brought(demo_db):
    campaign_id, name, cost = demo_db.execute(
        "SELECT campaign_id, name, cost FROM campaigns WHERE name = 'Paid social ads'").fetchone()
    result = plan_effect(demo_db, as_of=AS_OF, stop_campaign=name.upper())
    lift = romi.incremental_revenue(demo_db, campaign_id, as_of=AS_OF, n_boot=4000, confidence=0.8)
    assert result.ok and len(result.parts) == 1
    assert result.effect == pytest.approx(cost - max(lift["incremental_revenue"], 0.0))
    assert result.low <= result.effect <= result.high <= cost, "stopping never saves more than the campaign cost"
    assert result.high == pytest.approx(cost), "the measured lift's range reaches zero: the saving may be the whole cost"
    with pytest.raises(PlanError, match="No campaign is called 'no such campaign'.*Paid social ads"):
        plan_effect(demo_db, as_of=AS_OF, stop_campaign="no such campaign")


def test_bad_levers_are_refused_with_a_sentence(demo_db):
    with pytest.raises(PlanError, match="between 0 % and 100 %, not 150 %"):
        plan_effect(demo_db, as_of=AS_OF, win_back=1.5)


def test_the_range_holds_eight_in_ten_outcomes_simulated_from_the_model(demo_db):
    """200 outcomes drawn afresh under the model's own assumptions (which of the same customers
    come back, how often they buy, what their orders are worth): the stated 80 % range holds 70–90 %
    of them, and their mean is the point estimate."""
    result = plan_effect(demo_db, as_of=AS_OF, win_back=0.2)
    group = result.customers
    shape = float(clv.analyse_customers(demo_db, AS_OF).spend_model.params_["p"])
    gone, purchases = 1 - group["p_alive"].clip(lower=1e-3).to_numpy(), group["purchases_if_back"].to_numpy()
    outcomes = simulate_win_back(gone, purchases, order_value=group["expected_average_value"].to_numpy(), share=0.2,
                                 order_shape=shape, draws=200, rng=np.random.default_rng(2027))
    inside = np.mean((outcomes >= result.low) & (outcomes <= result.high))
    assert 0.70 <= inside <= 0.90
    many = simulate_win_back(gone, purchases, order_value=group["expected_average_value"].to_numpy(), share=0.2,
                             order_shape=shape, draws=20000, rng=np.random.default_rng(7))
    assert many.mean() == pytest.approx(result.effect, rel=0.03)


def test_crm_plan_prints_one_line_with_the_effect_and_its_range(demo_db_path):
    out = CliRunner().invoke(main, ["plan", "--db", str(demo_db_path), "--month", DEMO_END, "--win-back", "10%",
                                    "--no-page"])
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Winning back 10 % of the") and "EUR over the next 12 months (80 % range +" in lines[0]
    refused = CliRunner().invoke(main, ["plan", "--db", str(demo_db_path), "--month", DEMO_END,
                                        "--stop-campaign", "nothing", "--no-page"])
    assert refused.exit_code != 0 and "No campaign is called 'nothing'" in refused.output
    assert "Traceback" not in refused.output


@pytest.mark.slow
def test_page_07_runs_on_the_demo_and_says_the_effect(demo_db_path, tmp_path):
    import nbformat

    from support import run_notebook

    executed = nbformat.read(run_notebook("07_plan.ipynb", tmp_path, db_path=str(demo_db_path),
                                          period_start="2026-10-01", period_end=AS_OF, win_back=0.1,
                                          repeat_points=5.0, stop_campaign="Paid social ads"), as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert "Winning back 10 % of the" in text and "Stopping Paid social ads" in text
    assert "All levers together: about" in text


def test_the_planner_and_the_win_back_action_value_one_group(demo_db_copy):
    from crm_helpers.analyses import segmentation
    from crm_helpers.store.connection import open_db
    from crm_helpers.store.periods import parse_month

    db = open_db(demo_db_copy)
    period = parse_month("2026-10")
    segmentation.snapshot_month(db, period.end)
    segmentation.snapshot_month(db, period.previous_month().end)
    group = clv.win_back_group(db, period.end)
    everyone = int(group.analysis.customers["probably_lost"].sum())
    assert group.apart > 0 and len(group.lost) == everyone - group.apart, "the newly at risk are the at-risk action's"
    action = next(a for a in clv.actions(db, period=period) if a.key == "win back probably lost")
    effect = plan_effect(db, as_of=period.end, win_back=0.1)
    assert f"the {len(group.lost):,} repeat buyers" in action.sentence
    assert f"of the {len(group.lost):,} customers probably lost" in effect.sentence


def test_the_stop_campaign_action_carries_what_stopping_is_worth(demo_db):
    from crm_helpers.analyses.plan import with_what_if
    from crm_helpers.store.periods import parse_month

    period = parse_month(AS_OF[:7])
    stops = [a for a in with_what_if(demo_db, romi.actions(demo_db, period=period), period=period)
             if a.key.startswith(romi.STOP_CAMPAIGN_KEY)]
    assert stops and all(a.what_if.startswith("Stopping ") and a.what_if_page == "07_plan" for a in stops)
