#include "control/cutover/sequences.h"

#include <limits>
#include <map>
#include <thread>

namespace pgcutover::control {

std::vector<SequenceUpdate> plan_sequence_updates(const std::vector<SequenceValue>& from,
                                                  const std::vector<SequenceValue>& to,
                                                  int64_t margin,
                                                  std::vector<std::string>* missing) {
  std::map<std::pair<std::string, std::string>, const SequenceValue*> dest;
  for (const auto& s : to) dest[{s.schema, s.name}] = &s;
  std::vector<SequenceUpdate> out;
  for (const auto& s : from) {
    auto it = dest.find({s.schema, s.name});
    if (it == dest.end()) {
      if (missing) missing->push_back(s.schema + "." + s.name);
      continue;
    }
    if (!s.last_value) continue;  // never used on the side being left: nothing to carry
    const SequenceValue& d = *it->second;
    bool ascending = d.increment >= 0;
    int64_t step = d.increment == 0 ? 1 : d.increment;
    int64_t want;
    if (__builtin_mul_overflow(step, margin, &want) ||
        __builtin_add_overflow(*s.last_value, want, &want))
      want = ascending ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
    // Never backwards: "ahead" is larger for ascending sequences, smaller for descending.
    if (d.last_value && (ascending ? *d.last_value >= want : *d.last_value <= want)) continue;
    out.push_back({s.schema, s.name, *s.last_value, d.last_value, want});
  }
  return out;
}

std::string setval_sql(const SequenceUpdate& u) {
  std::string qualified = qualified_name(u.schema, u.name);
  std::string literal = "'";
  for (char c : qualified) {
    literal += c;
    if (c == '\'') literal += '\'';
  }
  literal += "'";
  return "SELECT setval(" + literal + ", " + std::to_string(u.new_value) + ", true)";
}

std::optional<std::vector<SequenceValue>> read_sequences(PgConn& conn, PgError& error) {
  // pg_sequences.last_value is NULL without USAGE/SELECT on the sequence; such a sequence is
  // reported as never used (and the preflight lists sequence privileges).
  PgResult r = conn.exec(
      "SELECT schemaname, sequencename, last_value, increment_by FROM pg_sequences "
      "WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'pgcutover') "
      "ORDER BY 1, 2");
  if (!r) {
    error = r.error();
    return std::nullopt;
  }
  std::vector<SequenceValue> out;
  for (int i = 0; i < r.rows(); ++i) {
    SequenceValue v;
    v.schema = r.get(i, 0);
    v.name = r.get(i, 1);
    if (!r.is_null(i, 2)) v.last_value = r.get_int(i, 2);
    v.increment = r.get_int(i, 3, 1);
    out.push_back(std::move(v));
  }
  return out;
}

SequenceSync sync_sequences(PgConn& from, PgConn& to, int64_t margin, bool dry_run) {
  SequenceSync res;
  // Both sides at once: this runs while the writes are paused, and the two reads are on
  // different servers (one round trip fewer in the pause).
  PgError from_error, to_error;
  std::optional<std::vector<SequenceValue>> a;
  std::thread from_reader([&] { a = read_sequences(from, from_error); });
  auto b = read_sequences(to, to_error);
  from_reader.join();
  if (!a) {
    res.error = "reading sequences on the side being left: " + from_error.message;
    return res;
  }
  if (!b) {
    res.error = "reading sequences on the destination: " + to_error.message;
    return res;
  }
  res.updates = plan_sequence_updates(*a, *b, margin, &res.missing);
  if (dry_run || res.updates.empty()) {
    res.ok = true;
    return res;
  }
  std::string script = "BEGIN;";
  for (const auto& u : res.updates) script += setval_sql(u) + ";";
  script += "COMMIT";
  PgResult r = to.exec_script(script);
  if (!r) {
    to.exec_script("ROLLBACK");
    res.error = "setval on the destination: " + r.error().message;
    return res;
  }
  res.ok = true;
  return res;
}

}  // namespace pgcutover::control
