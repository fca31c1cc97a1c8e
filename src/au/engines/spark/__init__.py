"""Apache Spark: ``--engine spark`` for au record, au score and au ablate (needs pyspark and Java 17+; see the README)."""
