//! Relay cursor connections for every list: forward pages of `first` (default 20, at
//! most 100) `after` an opaque cursor. A cursor is the base64 of the row's sort key,
//! so a page never skips or repeats a row when rows are added meanwhile.

use async_graphql::OutputType;
use async_graphql::connection::{Connection, CursorType, Edge, OpaqueCursor};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ApiError;

pub const DEFAULT_PAGE: i32 = 20;
pub const MAX_PAGE: i32 = 100;

/// A page request, checked.
#[derive(Debug, Clone)]
pub struct Page<K> {
    /// The sort key of the last row the client has seen.
    pub after: Option<K>,
    pub size: i64,
}

impl<K: Serialize + DeserializeOwned> Page<K> {
    pub fn new(first: Option<i32>, after: Option<String>) -> Result<Self, ApiError> {
        let first = first.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(ApiError::validation(
                "first",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
        let after = after
            .map(|cursor| {
                OpaqueCursor::<K>::decode_cursor(&cursor)
                    .map(|c| c.0)
                    .map_err(|_| ApiError::validation("after", "not a cursor of this list"))
            })
            .transpose()?;
        Ok(Self {
            after,
            size: i64::from(first),
        })
    }

    /// How many rows to fetch: one more than the page, to learn whether there is a next.
    pub fn fetch(&self) -> i64 {
        self.size + 1
    }

    /// The page of `rows` (fetched with [`Page::fetch`], in key order), each with the
    /// cursor of its key.
    pub fn connection<T: OutputType>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> K,
    ) -> Connection<OpaqueCursor<K>, T>
    where
        K: Send + Sync,
    {
        let size = usize::try_from(self.size).unwrap_or(usize::MAX);
        let has_next = rows.len() > size;
        rows.truncate(size);
        let mut connection = Connection::new(self.after.is_some(), has_next);
        connection.edges = rows
            .into_iter()
            .map(|row| Edge::new(OpaqueCursor(key(&row)), row))
            .collect();
        connection
    }

    /// A page over rows already in memory and in key order (an aggregate's entries).
    pub fn slice<T: OutputType>(
        &self,
        rows: Vec<T>,
        key: impl Fn(&T) -> K,
    ) -> Connection<OpaqueCursor<K>, T>
    where
        K: PartialOrd + Send + Sync,
    {
        let rows: Vec<T> = rows
            .into_iter()
            .filter(|row| self.after.as_ref().is_none_or(|after| key(row) > *after))
            .take(usize::try_from(self.fetch()).unwrap_or(usize::MAX))
            .collect();
        self.connection(rows, key)
    }
}
