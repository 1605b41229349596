//! News sentiment from `coinfold.news.sentiment`: the scored articles, and per coin and
//! hour the article counts by label and the sum of scores (a day, a trend or a mean
//! over any window is a sum over hours).

use sqlx::PgConnection;

use super::floor_to;
use crate::ingest::SENTIMENT_TOPIC;
use crate::projection::{Output, ProjectionError, Rejected, StreamMessage, StreamProjection};
use crate::sentiment::Label;
use crate::sentiment::worker::ScoredArticle;

pub const NAME: &str = "sentiment";
pub const TABLES: &[&str] = &["scored_articles", "sentiment_hourly"];

#[derive(Debug, Default, Clone, Copy)]
pub struct Sentiment;

impl StreamProjection for Sentiment {
    fn name(&self) -> &'static str {
        NAME
    }

    fn topic(&self) -> &'static str {
        SENTIMENT_TOPIC
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        messages: &[StreamMessage],
        out: &mut Output,
    ) -> Result<(), ProjectionError> {
        for message in messages {
            let scored = match serde_json::from_slice::<ScoredArticle>(&message.payload) {
                Ok(scored) if scored.score.is_finite() => scored,
                Ok(_) => {
                    out.rejected
                        .push(Rejected::of(message, "score is not a finite number".into()));
                    continue;
                }
                Err(error) => {
                    out.rejected.push(Rejected::of(
                        message,
                        format!("not a scored article: {error}"),
                    ));
                    continue;
                }
            };
            let label = match scored.label {
                Label::Positive => "POSITIVE",
                Label::Negative => "NEGATIVE",
                Label::Neutral => "NEUTRAL",
            };
            // The same article scored again (a redelivery, a re-run of the scorer) is
            // counted once.
            let inserted = sqlx::query(
                "INSERT INTO scored_articles (article_id, coin, title, url, source, published_at, \
                 scored_at, score, label) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (article_id, coin) DO NOTHING",
            )
            .bind(&scored.article_id)
            .bind(scored.coin.as_str())
            .bind(&scored.title)
            .bind(&scored.url)
            .bind(&scored.source)
            .bind(scored.published_at)
            .bind(scored.scored_at)
            .bind(scored.score)
            .bind(label)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                continue;
            }
            let hour = floor_to(scored.published_at.unwrap_or(scored.scored_at), 3600);
            sqlx::query(
                "INSERT INTO sentiment_hourly (coin, hour, articles, positive, negative, neutral, score_sum) \
                 VALUES ($1, $2, 1, $3, $4, $5, $6) \
                 ON CONFLICT (coin, hour) DO UPDATE SET articles = sentiment_hourly.articles + 1, \
                 positive = sentiment_hourly.positive + excluded.positive, \
                 negative = sentiment_hourly.negative + excluded.negative, \
                 neutral = sentiment_hourly.neutral + excluded.neutral, \
                 score_sum = sentiment_hourly.score_sum + excluded.score_sum",
            )
            .bind(scored.coin.as_str())
            .bind(hour)
            .bind(i64::from(label == "POSITIVE"))
            .bind(i64::from(label == "NEGATIVE"))
            .bind(i64::from(label == "NEUTRAL"))
            .bind(scored.score)
            .execute(&mut *tx)
            .await?;
            out.notify(
                format!("sentiment.{}", scored.coin.as_str()),
                serde_json::to_value(&scored).unwrap_or_default(),
            );
        }
        Ok(())
    }
}
