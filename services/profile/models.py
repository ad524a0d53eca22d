"""Tables of the profile service (its own database).

Profiles keep their fields and per-field visibility as JSON. The directory index
(``search_docs``) holds one row per profile and viewer tier (what the whole
ecosystem, connections, colleagues or the owner may see), so a search never
matches or shows a field its viewer may not see; a profile that flagged fields for
allied ecosystems has two more rows (``allied``, ``allied_conn``: the flagged fields an
allied viewer, or one connected across, may see), read only by federated searches.
Tag clouds are kept incrementally: ``content_terms`` per piece of writing,
``cloud_terms`` summed over each author's and company's public writing,
``corpus_terms`` the ecosystem's document frequencies (over public documents only).
"""

from pathlib import Path

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    event,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.schema import DDL

from mesh.alliances import alliance_table
from mesh.migrate import History


class Base(DeclarativeBase):
    pass


metadata = Base.metadata
ID = 128

persons = Table(
    "persons",
    metadata,
    Column("eco", String(ID), primary_key=True),
    Column("person", String(ID), primary_key=True),
    Column("partner", String(ID), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("fields", JSON, nullable=False),
    Column("visibility", JSON, nullable=False),
    Column("verified", Boolean, nullable=False, default=False),
    Column("verified_by", String(ID)),
    Column("verified_note", Text, nullable=False, default=""),
    Column("verified_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Since when the profile exists ("member since"); older rows got their updated_at.
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Hash of the profile picture in ``pictures``, if one was uploaded.
    Column("image", String(64)),
    # Per field: shared with allied ecosystems (true), beside the field's visibility.
    Column("allied", JSON, nullable=False, server_default=text("'{}'")),
)

companies = Table(
    "companies",
    metadata,
    Column("eco", String(ID), primary_key=True),
    Column("partner", String(ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("fields", JSON, nullable=False),
    Column("visibility", JSON, nullable=False),
    Column("verified", Boolean, nullable=False, default=False),
    Column("verified_by", String(ID)),
    Column("verified_note", Text, nullable=False, default=""),
    Column("verified_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Since when the profile exists ("member since"); older rows got their updated_at.
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Hash of the logo in ``pictures``, if one was uploaded.
    Column("image", String(64)),
    Column("allied", JSON, nullable=False, server_default=text("'{}'")),
)

# Profile pictures (a person's avatar, a company's logo), already resized and stripped of
# metadata, as bytes in this database: every replica serves them, on SQLite and PostgreSQL.
pictures = Table(
    "pictures",
    metadata,
    Column("eco", String(ID), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("owner", String(ID), primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("media_type", String(40), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

connections = Table(
    "connections",
    metadata,
    Column("eco", String(ID), primary_key=True),
    Column("person", String(ID), primary_key=True),
    Column("other", String(ID), primary_key=True),
    Column("other_partner", String(ID), nullable=False),
)

# Connections across an alliance: ``person`` of ``eco`` is connected with ``other`` of the
# allied ecosystem ``other_eco`` (an accepted introduction across). Facts kept whatever
# becomes of the alliance; they open ``connections`` fields only while it is active.
connections_across = Table(
    "connections_across",
    metadata,
    Column("eco", String(ID), primary_key=True),
    Column("person", String(ID), primary_key=True),
    Column("other_eco", String(ID), primary_key=True),
    Column("other", String(ID), primary_key=True),
    Column("other_partner", String(ID), nullable=False),
)

# The alliances between ecosystems as identity publishes them (mesh.alliances).
alliances = alliance_table(metadata)

audit = Table(
    "verification_audit",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("eco", String(ID), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(ID), nullable=False),
    Column("action", String(20), nullable=False),
    Column("target_kind", String(20), nullable=False),
    Column("target", String(ID), nullable=False),
    Column("note", Text, nullable=False),
)

contents = Table(
    "contents",
    metadata,
    Column("eco", String(ID), primary_key=True),
    Column("content_id", String(ID), primary_key=True),
    Column("author", String(ID), nullable=False),
    Column("author_partner", String(ID), nullable=False),
    Column("workspace", String(ID)),
    Column("hidden", Boolean, nullable=False),
    Column("public", Boolean, nullable=False),
    Column("event_us", BigInteger, nullable=False),
    Index("ix_contents_author", "eco", "author"),
    Index("ix_contents_partner", "eco", "author_partner"),
)

content_audience = Table(
    "content_audience",
    metadata,
    Column("eco", String(ID), primary_key=True),
    Column("content_id", String(ID), primary_key=True),
    Column("partner", String(ID), primary_key=True),
)

content_terms = Table(
    "content_terms",
    metadata,
    Column("eco", String(ID), primary_key=True),
    Column("content_id", String(ID), primary_key=True),
    Column("term", String(200), primary_key=True),
    Column("surface", String(200), nullable=False),
    Column("tf", Integer, nullable=False),
)

cloud_terms = Table(
    "cloud_terms",
    metadata,
    Column("eco", String(ID), primary_key=True),
    Column("owner_kind", String(10), primary_key=True),
    Column("owner", String(ID), primary_key=True),
    Column("term", String(200), primary_key=True),
    Column("surface", String(200), nullable=False),
    Column("tf", Integer, nullable=False),
    Column("posts", Integer, nullable=False),
)

corpus_terms = Table(
    "corpus_terms",
    metadata,
    Column("eco", String(ID), primary_key=True),
    Column("term", String(200), primary_key=True),
    Column("df", Integer, nullable=False),
)

search_docs = Table(
    "search_docs",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("eco", String(ID), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("entry", String(ID), nullable=False),
    Column("tier", String(12), nullable=False),
    Column("partner", String(ID), nullable=False),
    Column("person", String(ID)),
    Column("name", String(200), nullable=False),
    Column("name_key", String(200), nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("text", Text, nullable=False),
    Column("summary", JSON, nullable=False),
    Index("ix_search_entry", "eco", "kind", "entry", "tier", unique=True),
    Index("ix_search_partner", "eco", "kind", "partner"),
    Index("ix_search_tier_name", "eco", "kind", "tier", "name_key", "entry"),
)

search_facets = Table(
    "search_facets",
    metadata,
    Column("doc_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("facet", String(20), primary_key=True),
    Column("value", String(200), primary_key=True),
    Index("ix_facets_value", "facet", "value"),
)

# Full text: FTS5 beside search_docs on SQLite (rowid = search_docs.id); on PostgreSQL a
# stored generated tsvector column (``tsv``, parsed once per write, read by both matching
# and ranking) with a GIN index. Both index the same analyzed text. Migrations make the
# same (r0001, r0005).
event.listen(
    metadata,
    "after_create",
    DDL("CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(text)").execute_if(
        dialect="sqlite"
    ),
)
for _statement in (
    "ALTER TABLE search_docs ADD COLUMN IF NOT EXISTS tsv tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, text)) STORED",
    "CREATE INDEX IF NOT EXISTS ix_search_tsv ON search_docs USING gin (tsv)",
):
    event.listen(metadata, "after_create", DDL(_statement).execute_if(dialect="postgresql"))

# The schema's history: its revisions are in migrations/ beside this module (mesh.migrate).
history = History(
    "profile",
    metadata,
    Path(__file__).with_name("migrations"),
    outbox=True,
    inbox=True,
    unmanaged=("search_fts", "ix_search_tsv", "tsv"),
)
