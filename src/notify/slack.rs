//! Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat): `{"text": …}`, and
//! optionally Block Kit blocks (a header with the title, a section with the rest).

use serde_json::{Value, json};

use super::Message;

/// Slack caps a header's text at 150 characters and a section's at 3000.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;

/// The body POSTed to a `slack` receiver.
pub fn payload(message: &Message, blocks: bool) -> Value {
    let text = escape(&message.text);
    if !blocks {
        return json!({ "text": text });
    }
    json!({
        "text": text,
        "blocks": [
            {
                "type": "header",
                "text": { "type": "plain_text", "text": truncate(&message.title, HEADER_MAX) },
            },
            {
                "type": "section",
                "text": { "type": "mrkdwn", "text": truncate(&escape(message.body()), SECTION_MAX) },
            },
        ],
    })
}

/// Slack reads `&`, `<` and `>` as markup; they must be escaped in `text` and mrkdwn.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped_and_blocks_are_capped() {
        let m = Message {
            title: "t".repeat(200),
            text: format!("{}\nImpact: a < b & c > d", "t".repeat(200)),
        };
        let plain = payload(&m, false);
        assert_eq!(plain.as_object().unwrap().len(), 1);
        assert!(
            plain["text"]
                .as_str()
                .unwrap()
                .ends_with("a &lt; b &amp; c &gt; d")
        );
        let rich = payload(&m, true);
        let header = rich["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(header.chars().count(), HEADER_MAX);
        assert_eq!(
            rich["blocks"][1]["text"]["text"],
            "Impact: a &lt; b &amp; c &gt; d"
        );
    }
}
