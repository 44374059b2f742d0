#include "control/replication/link.h"
#include "common/redact.h"

#include <thread>
#include <vector>

namespace pgcutover::control {

LinkNames forward_link() {
  return {"pgcutover", "pgcutover_insert_only", "pgcutover", "pgcutover"};
}
LinkNames reverse_link() {
  return {"pgcutover_reverse", "pgcutover_reverse_insert_only", "pgcutover_reverse",
          "pgcutover_reverse"};
}

bool slot_exists(PgConn& publisher, const std::string& slot) {
  auto v =
      publisher.value("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", {slot});
  return v && *v != "0";
}

bool link_exists(PgConn& subscriber, const LinkNames& link) {
  auto v = subscriber.value(
      "SELECT count(*) FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid "
      "WHERE d.datname = current_database() AND s.subname = $1",
      {link.subscription});
  return v && *v != "0";
}

bool drop_link(PgConn& subscriber, PgConn& publisher, const LinkNames& link, std::string& error) {
  if (link_exists(subscriber, link)) {
    std::string q = quote_ident(link.subscription);
    // Detach the slot first so DROP SUBSCRIPTION never waits on the publisher.
    PgResult r =
        subscriber.exec_script("ALTER SUBSCRIPTION " + q + " DISABLE; ALTER SUBSCRIPTION " + q +
                               " SET (slot_name = NONE); DROP SUBSCRIPTION " + q);
    if (!r) {
      error = "DROP SUBSCRIPTION " + link.subscription + ": " + r.error().message;
      return false;
    }
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (true) {
    auto active = publisher.value(
        "SELECT active::text FROM pg_replication_slots WHERE slot_name = $1", {link.slot});
    if (!active) return true;  // no such slot
    if (*active == "false") {
      PgResult d = publisher.exec("SELECT pg_drop_replication_slot($1)", {link.slot});
      if (d) return true;
    } else {
      // The walsender of the disabled subscription exits asynchronously; end it if it lingers.
      publisher.exec(
          "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 "
          "AND active_pid IS NOT NULL",
          {link.slot});
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      error = "slot " + link.slot +
              " still in use after 15 s; drop it with SELECT "
              "pg_drop_replication_slot('" +
              link.slot + "')";
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

namespace {

bool publication_exists(PgConn& c, const std::string& name) {
  auto v = c.value("SELECT count(*) FROM pg_publication WHERE pubname = $1", {name});
  return v && *v != "0";
}

// "schema"."table", ... of one publication on `c` ("" when it does not exist or is empty).
std::string publication_tables(PgConn& c, const std::string& pub) {
  auto v = c.value(
      "SELECT string_agg(format('%I.%I', schemaname, tablename), ', ' ORDER BY 1) "
      "FROM pg_publication_tables WHERE pubname = $1",
      {pub});
  return v ? *v : "";
}

}  // namespace

bool create_publications(PgConn& publisher, const LinkNames& link, PgConn& peer,
                         const LinkNames& peer_link, std::string& error) {
  struct P {
    const std::string& mine;
    const std::string& theirs;
    const char* with;
  };
  for (const P& p : {P{link.publication, peer_link.publication, ""},
                     P{link.insert_only_publication, peer_link.insert_only_publication,
                       " WITH (publish = 'insert')"}}) {
    if (publication_exists(publisher, p.mine)) continue;
    std::string tables = publication_tables(peer, p.theirs);
    if (tables.empty()) continue;
    PgResult r = publisher.exec_script("CREATE PUBLICATION " + quote_ident(p.mine) + " FOR TABLE " +
                                       tables + p.with);
    if (!r) {
      error = "CREATE PUBLICATION " + p.mine + ": " + r.error().message;
      return false;
    }
  }
  if (!publication_exists(publisher, link.publication) &&
      !publication_exists(publisher, link.insert_only_publication)) {
    error = "no publication to subscribe to (the other side has no pgcutover publication)";
    return false;
  }
  return true;
}

bool prepare_link(PgConn& publisher, const LinkNames& link, PgConn& peer,
                  const LinkNames& peer_link, std::string& error) {
  if (!create_publications(publisher, link, peer, peer_link, error)) return false;
  return create_slot(publisher, link, error);
}

bool create_slot(PgConn& publisher, const LinkNames& link, std::string& error) {
  // One round trip (the flip makes the slot while every proxy holds its writes): the slot is
  // created only when missing and only after a publication of the link exists, since a
  // walsender decoding from a point before its publication was created fails. Waits for the
  // transactions in progress on the publisher.
  // CASE evaluates a branch's sub-select only when it reaches it: the slot is made last.
  PgResult r = publisher.exec(
      "SELECT CASE "
      "WHEN EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1) THEN 'present' "
      "WHEN NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname IN ($2, $3)) "
      "THEN 'no publication' "
      "ELSE (SELECT 'created' FROM pg_create_logical_replication_slot($1, 'pgoutput')) END",
      {link.slot, link.publication, link.insert_only_publication});
  if (!r) {
    error = "creating slot " + link.slot + ": " + r.error().message;
    return false;
  }
  if (r.get(0, 0) == "no publication") {
    error = "creating slot " + link.slot + ": no publication " + link.publication + " or " +
            link.insert_only_publication + " on the publisher";
    return false;
  }
  return true;
}

bool create_link(PgConn& publisher, PgConn& subscriber, const std::string& publisher_conninfo,
                 const LinkNames& link, PgConn& peer, const LinkNames& peer_link,
                 std::string& error) {
  if (!prepare_link(publisher, link, peer, peer_link, error)) return false;
  if (link_exists(subscriber, link)) return true;
  std::string pub_list;
  for (const auto& p : {link.publication, link.insert_only_publication})
    if (publication_exists(publisher, p))
      pub_list += (pub_list.empty() ? "" : ", ") + quote_ident(p);
  PgResult r = subscriber.exec_script(
      "CREATE SUBSCRIPTION " + quote_ident(link.subscription) + " CONNECTION " +
      subscriber.quote_literal(publisher_conninfo) + " PUBLICATION " + pub_list +
      " WITH (create_slot = false, slot_name = " + subscriber.quote_literal(link.slot) +
      ", copy_data = false, synchronous_commit = 'on')");  // see replication_logical.cpp
  if (!r) {
    error = "CREATE SUBSCRIPTION " + link.subscription + ": " + redact(r.error().message);
    return false;
  }
  return true;
}

bool set_link_enabled(PgConn& subscriber, const LinkNames& link, bool enabled, std::string& error) {
  // Tried directly, one round trip (the flip disables while writes are held): a subscription
  // that does not exist (undefined_object) has nothing to enable or disable.
  PgResult r = subscriber.exec_script("ALTER SUBSCRIPTION " + quote_ident(link.subscription) +
                                      (enabled ? " ENABLE" : " DISABLE"));
  if (!r && r.error().sqlstate == "42704") return true;
  if (!r) {
    error = "ALTER SUBSCRIPTION " + link.subscription + (enabled ? " ENABLE: " : " DISABLE: ") +
            r.error().message;
    return false;
  }
  return true;
}

bool drop_publications(PgConn& publisher, const LinkNames& link, std::string& error) {
  for (const auto& p : {link.publication, link.insert_only_publication}) {
    PgResult r = publisher.exec_script("DROP PUBLICATION IF EXISTS " + quote_ident(p));
    if (!r) {
      error = "DROP PUBLICATION " + p + ": " + r.error().message;
      return false;
    }
  }
  return true;
}

bool wait_slot_passes(PgConn& publisher, const std::string& slot, std::chrono::milliseconds timeout,
                      std::string& barrier_lsn, std::string& error) {
  auto l = publisher.value("SELECT pg_current_wal_lsn()::text");
  if (!l) {
    error = "reading pg_current_wal_lsn()";
    return false;
  }
  barrier_lsn = *l;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto ok = publisher.value(
        "SELECT (confirmed_flush_lsn >= $2::pg_lsn)::text FROM pg_replication_slots "
        "WHERE slot_name = $1",
        {slot, *l});
    if (!ok) {
      error = "slot " + slot + " does not exist on the publisher";
      return false;
    }
    if (*ok == "true") return true;
    if (std::chrono::steady_clock::now() >= deadline) {
      error = "the subscriber did not confirm " + *l + " within " +
              std::to_string(timeout.count()) + " ms";
      return false;
    }
    // Short: this wait is inside the write pause.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace pgcutover::control
