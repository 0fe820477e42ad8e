"""kvmnetlab.lab.campaign_link_cache: the campaign's cache of data interfaces, one entry per
<host>|<address> looked up (was a set_fact ... combine loop in roles/campaign/tasks/run.yml),
in the key kvmnetlab.campaign.more_flows reads. Fast, no lab."""

from __future__ import annotations

from kvmnetlab.campaign import more_flows
from tests.helpers import collection_plugin

filters = collection_plugin("filter", "campaign")


def test_looked_up_hosts_are_added_and_skipped_or_lost_ones_are_not():
    cache = {"h1|198.18.0.1": "[h1 links]"}
    results = [
        {"item": {"host": "h1", "address": "198.18.0.1"}, "skipped": True},  # cached already
        {"item": {"host": "g1", "address": "198.18.1.11"}, "stdout": "[g1 links]", "rc": 0},
        {"item": {"host": "g2", "address": "198.18.1.12"}, "unreachable": True, "msg": "gone"},
    ]
    updated = filters.campaign_link_cache(results, cache)
    assert updated == {"h1|198.18.0.1": "[h1 links]", "g1|198.18.1.11": "[g1 links]"}
    assert cache == {"h1|198.18.0.1": "[h1 links]"}  # the given cache is not changed
    assert filters.campaign_link_cache([], {}) == {}
    assert filters.campaign_link_cache(None, None) == {}


def test_the_key_is_the_one_the_later_flows_read():
    flow = {"receiver": "g1", "host": "g1", "address": "198.18.1.11",
            "target_address": "198.18.1.11", "receiver_shares_kernel": False, "qemu_pid": 7,
            "container_cgroup": None}
    cache = filters.campaign_link_cache(
        [{"item": {"host": "g1", "address": "198.18.1.11"}, "stdout": "[g1 links]"}], {})
    later = more_flows([{**flow, "receiver": "g0"}, flow], cache, {})
    assert later[0]["receiver_links"] == "[g1 links]"
