from chalicelib.domain.agent import Agent
from chalicelib.domain.routing import choose_agent, choose_team


def test_verified_author_goes_to_vip_team_even_for_product_feedback():
    assert choose_team({"tags": ["vip"], "category": "product_feedback"}) == "vip"


def test_product_feedback_goes_to_product_team_and_leads_to_sales():
    assert choose_team({"tags": [], "category": "product_feedback"}) == "product"
    assert choose_team({"tags": [], "category": "sales_lead"}) == "sales"


def test_everything_else_goes_to_support():
    assert choose_team({"tags": ["influencer"], "category": "complaint"}) == "support"


def test_a_supervisor_rule_team_wins_but_only_if_someone_staffs_it():
    triage = {"tags": ["vip"], "category": "complaint", "team": "crisis"}
    assert choose_team(triage, known_teams=["crisis", "vip", "support"]) == "crisis"
    assert choose_team(triage, known_teams=["vip", "support"]) == "vip"


def test_unstaffed_default_team_falls_back_to_support():
    assert choose_team({"tags": ["vip"]}, known_teams=["support"]) == "support"


def test_least_loaded_available_agent_below_capacity_is_chosen():
    agents = [
        Agent(agent_id="a", open_cases=3, capacity=10),
        Agent(agent_id="b", open_cases=1, capacity=10, available=False),
        Agent(agent_id="c", open_cases=2, capacity=2),
        Agent(agent_id="d", open_cases=2, capacity=10),
    ]
    assert choose_agent(agents).agent_id == "d"


def test_equal_load_goes_to_who_waited_longest():
    agents = [
        Agent(agent_id="a", open_cases=1, last_assigned_at="2026-11-23T10:00:00Z"),
        Agent(agent_id="b", open_cases=1, last_assigned_at="2026-11-23T09:00:00Z"),
    ]
    assert choose_agent(agents).agent_id == "b"


def test_nobody_free_leaves_the_case_in_the_queue():
    assert choose_agent([Agent(agent_id="a", open_cases=5, capacity=5)]) is None
    assert choose_agent([]) is None
