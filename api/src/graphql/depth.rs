//! The depth limit, measured without introspection.
//!
//! async-graphql's own `limit_depth` counts every field, so graphql-js's
//! `getIntrospectionQuery()` (what GraphiQL, Apollo and code generators send first) is
//! 13 deep through `__schema { types { fields { type { ofType { … } } } } }` and was
//! refused at 12. Introspection is bounded by the schema itself, not by the client, so
//! this limit leaves out every field whose name starts with `__` (and what it selects),
//! while a real query is measured as before: a root field is depth 1, and fragments
//! count where they are spread.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

/// Refuses documents nested deeper than `max`, introspection left out.
pub struct DepthLimit {
    pub max: usize,
}

impl ExtensionFactory for DepthLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DepthLimitExtension { max: self.max })
    }
}

struct DepthLimitExtension {
    max: usize,
}

#[async_trait::async_trait]
impl Extension for DepthLimitExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let depth = depth(&document, self.max);
        if depth > self.max {
            return Err(ServerError::new(
                format!(
                    "Query is nested too deep: more than {} levels of fields (introspection fields are not counted)",
                    self.max
                ),
                None,
            ));
        }
        Ok(document)
    }
}

/// The deepest nesting of non-introspection fields in any operation of `document`;
/// stops looking once past `max` (a fragment cycle, which validation refuses later,
/// cannot make it loop).
pub fn depth(document: &ExecutableDocument, max: usize) -> usize {
    let mut walk = Walk {
        document,
        max,
        spreads: Vec::new(),
    };
    document
        .operations
        .iter()
        .map(|(_, operation)| walk.selection_set(&operation.node.selection_set.node, 0))
        .max()
        .unwrap_or(0)
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    max: usize,
    /// Fragments being walked, innermost last.
    spreads: Vec<&'a str>,
}

impl<'a> Walk<'a> {
    /// The deepest field below `set`, which sits at `depth`.
    fn selection_set(&mut self, set: &'a SelectionSet, depth: usize) -> usize {
        if depth > self.max {
            return depth;
        }
        let mut deepest = depth;
        for selection in &set.items {
            let reached = match &selection.node {
                Selection::Field(field) => {
                    if field.node.name.node.starts_with("__") {
                        continue;
                    }
                    self.selection_set(&field.node.selection_set.node, depth + 1)
                }
                Selection::InlineFragment(fragment) => {
                    self.selection_set(&fragment.node.selection_set.node, depth)
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    else {
                        continue;
                    };
                    if self.spreads.contains(&name) {
                        continue;
                    }
                    self.spreads.push(name);
                    let reached = self.selection_set(&fragment.node.selection_set.node, depth);
                    self.spreads.pop();
                    reached
                }
            };
            deepest = deepest.max(reached);
        }
        deepest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn depth_of(query: &str) -> usize {
        depth(&parse_query(query).unwrap(), 12)
    }

    #[test]
    fn fields_count_from_the_root_and_fragments_where_they_are_spread() {
        assert_eq!(depth_of("{ a }"), 1);
        assert_eq!(depth_of("{ a { b { c } } d }"), 3);
        assert_eq!(
            depth_of("query { a { ...F } } fragment F on T { b { c { d } } }"),
            4
        );
        assert_eq!(depth_of("{ a { ... on T { b { c } } } }"), 3);
    }

    #[test]
    fn introspection_is_not_counted() {
        assert_eq!(
            depth_of(
                "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } }"
            ),
            0
        );
        assert_eq!(depth_of("{ a { __typename b } }"), 2);
    }

    #[test]
    fn a_fragment_cycle_does_not_loop() {
        assert_eq!(depth_of("{ a { ...F } } fragment F on T { b { ...F } }"), 2);
    }
}
