"""The escape of agent text and mention handling."""

from __future__ import annotations

from hotplex_slack.text import mentioned_users, slack_escape, strip_mention
from hypothesis import given
from hypothesis import strategies as st


def test_mentions_and_broadcasts_are_shown_literally() -> None:
    for text in ("<!channel> hi", "<!here>", "<@U01> look", "<https://x|click>", "a & b"):
        escaped = slack_escape(text)
        assert "<" not in escaped and ">" not in escaped
    assert slack_escape("<!channel> & <@U01>") == "&lt;!channel&gt; &amp; &lt;@U01&gt;"


@given(st.text(), st.text())
def test_the_escape_works_character_by_character(head: str, tail: str) -> None:
    assert slack_escape(head + tail) == slack_escape(head) + slack_escape(tail)


def test_the_bots_mention_is_stripped_and_others_kept() -> None:
    assert strip_mention("<@UBOT> hi  <@U2>", "UBOT") == "hi <@U2>"
    assert strip_mention("<@UBOT|hotplex> hi", "UBOT") == "hi"
    assert mentioned_users("<@U1> and <@U2|bob>") == {"U1", "U2"}
