// One direction of native logical replication as the flip sees it: publications and a slot
// on the publisher, a subscription on the subscriber. The flip swaps directions in two halves.
// While every proxy is paused it disables the old subscription and creates the new direction's
// slot on the destination (the way back must keep the first write made there); after the gates
// have opened it drops the old subscription and slot and subscribes the side left behind to
// the slot, copy_data = false (publications stay: they cost nothing and a rollback reuses
// them). On PostgreSQL 15 a subscription re-publishes what it applied (no origin filter), so
// both directions must never apply at once: the old one is disabled before the new one exists.
#pragma once

#include <chrono>
#include <string>

#include "control/db/pg_conn.h"

namespace pgcutover::control {

struct LinkNames {
  std::string publication, insert_only_publication, subscription, slot;
};
// source -> target (what `replicate start --method logical` made) and target -> source.
LinkNames forward_link();
LinkNames reverse_link();

// Whether the replication slot exists on the publisher (false when it cannot be read).
bool slot_exists(PgConn& publisher, const std::string& slot);
// Whether the subscription exists (on the subscriber).
bool link_exists(PgConn& subscriber, const LinkNames& link);
// Drops the subscription (detached from its slot first) and the slot on the publisher,
// retrying while the walsender exits (bounded). Idempotent.
bool drop_link(PgConn& subscriber, PgConn& publisher, const LinkNames& link, std::string& error);
// The publications of `link` on `publisher`, with the tables of `peer`'s publications
// `peer_link`, when they do not exist yet. Idempotent.
bool create_publications(PgConn& publisher, const LinkNames& link, PgConn& peer,
                         const LinkNames& peer_link, std::string& error);
// The publisher's half of a link: create_publications, then the slot. From the slot's creation
// on, every change on `publisher` is kept for the subscription made later. Idempotent.
bool prepare_link(PgConn& publisher, const LinkNames& link, PgConn& peer,
                  const LinkNames& peer_link, std::string& error);
// The slot of `link` on `publisher` when it is missing, once a publication of the link exists
// there (create_publications). One round trip. Idempotent.
bool create_slot(PgConn& publisher, const LinkNames& link, std::string& error);
// prepare_link, then the subscription on `subscriber` connecting with `publisher_conninfo`,
// attached to the slot, copy_data = false. Idempotent.
bool create_link(PgConn& publisher, PgConn& subscriber, const std::string& publisher_conninfo,
                 const LinkNames& link, PgConn& peer, const LinkNames& peer_link,
                 std::string& error);
// ALTER SUBSCRIPTION .. ENABLE / DISABLE when the subscription exists. A disabled one applies
// no further transaction; its slot keeps what the publisher writes meanwhile.
bool set_link_enabled(PgConn& subscriber, const LinkNames& link, bool enabled, std::string& error);
// Drops the publications of `link` on `publisher` (finalize).
bool drop_publications(PgConn& publisher, const LinkNames& link, std::string& error);

// The logical barrier: reads pg_current_wal_lsn() on `publisher` ONCE, then waits until the
// slot's confirmed_flush_lsn passes it (never a moving "lag = 0"). `barrier_lsn` is set.
bool wait_slot_passes(PgConn& publisher, const std::string& slot, std::chrono::milliseconds timeout,
                      std::string& barrier_lsn, std::string& error);

}  // namespace pgcutover::control
