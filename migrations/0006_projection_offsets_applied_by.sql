-- Which process last applied a batch of each partition of a Kafka-fed projection, and
-- when. Two `coinfold project` processes in one consumer group split the partitions;
-- `coinfold projections status --partitions` shows who holds which. Operational only:
-- no read model depends on it, and a rebuild writes its own name here at the swap.
ALTER TABLE projection_offsets
    ADD COLUMN applied_by text        NOT NULL DEFAULT '',
    ADD COLUMN applied_at timestamptz NOT NULL DEFAULT now();
