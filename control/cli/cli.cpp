#include "control/cli/cli.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <sstream>

#include "control/cli/fleet.h"
#include "control/cli/run_lock.h"
#include "control/cli/status.h"
#include "control/cli/traffic.h"
#include "control/command/exit_codes.h"
#include "control/command/version.h"
#include "control/cutover/flip.h"
#include "control/preflight/preflight.h"
#include "control/replication/method.h"
#include "control/replication/replicate.h"
#include "control/schema/schema.h"
#include "control/validate/validate.h"

namespace pgcutover::control {
namespace {

struct OptionSpec {
  const char* name;   // long name without "--"
  char short_name;    // 0 when none
  const char* value;  // placeholder for the value, nullptr for a flag
  const char* help;
};

struct CommandSpec {
  const char* words;  // "replicate start"
  const char* summary;
  const char* description;  // what it does, in a few lines
  std::vector<OptionSpec> options;
  const char* exit_codes;  // command-specific meaning of 0/1/2
  int (*handler)(CommandContext&);
};

const std::vector<OptionSpec>& global_options() {
  static const std::vector<OptionSpec> kGlobal = {
      {"config", 'c', "FILE",
       "configuration file shared with the proxy (default: $PGCUTOVER_CONFIG); source and "
       "target come from [backends.source] and [backends.target]"},
      {"source-url", 0, "URL", "source database URL or conninfo (overrides the config)"},
      {"target-url", 0, "URL", "target database URL or conninfo (overrides the config)"},
      {"json", 0, nullptr, "machine-readable output: one JSON document on stdout"},
      {"connect-timeout", 0, "SECONDS", "bound on each connection attempt (default 10)"},
      {"help", 'h', nullptr, "show help for the command and exit"},
  };
  return kGlobal;
}

const OptionSpec kMethod = {"method", 0, "METHOD",
                            "replication method: logical | external | dump | trigger "
                            "(default: the one recorded by replicate start)"};

const OptionSpec kSubscriber = {
    "subscriber-url", 0, "URL",
    "target connection for the subscription (CREATE/DROP SUBSCRIPTION need superuser on "
    "PostgreSQL 15, rds_superuser on RDS); default: the target URL"};

const OptionSpec kSourceSubscriber = {
    "source-subscriber-url", 0, "URL",
    "source connection for replication DDL and the reverse subscription (superuser on "
    "PostgreSQL 15); default: the source URL. Without superuser there is no reverse replication"};
const OptionSpec kFenceRole = {"fence-role", 0, "ROLE",
                               "application role to fence (repeatable; default: the URL's user)"};

const std::vector<OptionSpec> kCutoverOptions = {
    {"dry-run", 0, nullptr, "check the preconditions and show the plan; pause nothing"},
    {"to", 0, "BACKEND", "flip: the destination backend (only: target)"},
    {"method", 0, "METHOD", "replication method (default: the recorded one)"},
    {"journal", 0, "FILE", "journal file (default: [control] journal)"},
    {"max-lag-bytes", 0, "N", "logical: refuse when the slot is further behind (default 16 MB)"},
    {"max-lag", 0, "SECONDS", "external: refuse when a heartbeat takes longer (default 5)"},
    {"max-validation-age", 0, "SECONDS",
     "refuse when the last validation is older (default 86400; 0: do not check)"},
    {"drain-timeout", 0, "SECONDS", "per-proxy drain bound of the pause (default 5)"},
    {"max-pause", 0, "SECONDS", "dead-man timer of the pause (default 30)"},
    {"catch-up-timeout", 0, "SECONDS", "bound on the catch-up barrier (default 10)"},
    {"sequence-margin", 0, "N", "increments added to each sequence (default 1000)"},
    {"smoke-url", 0, "URL",
     "a client URL through one proxy for the smoke test (default $PGCUTOVER_SMOKE_URL)"},
    {"admin-timeout", 0, "SECONDS", "bound on each admin API call (default 5)"},
    {"publisher-url", 0, "URL", "the source as the target server reaches it"},
    {"reverse-publisher-url", 0, "URL",
     "the target as the source server reaches it (reverse subscription; default: target URL)"},
    {"accept-data-loss", 0, nullptr,
     "revert without reverse replication: writes made on the target since the flip stay there"},
    {"force", 0, nullptr, "revert although the last `validate --reverse` found differences"},
    {"jobs", 'j', "N", "dump method: parallel pg_dump/pg_restore workers (default 4)"},
    kSubscriber,
    kSourceSubscriber,
    kFenceRole,
};

// The cutover options one command reads, in kCutoverOptions' order: revert and recover show
// (and accept) only what they use, not everything flip takes.
std::vector<OptionSpec> cutover_options(std::initializer_list<std::string_view> names) {
  std::vector<OptionSpec> out;
  for (const auto& o : kCutoverOptions)
    for (auto n : names)
      if (n == o.name) out.push_back(o);
  return out;
}

const std::vector<CommandSpec>& commands() {
  static const std::vector<CommandSpec> kCommands = {
      {"preflight",
       "check both databases before a migration",
       "Reads the source and the target and reports pass/warn/fail per check, each with what\n"
       "was found and how to fix it: versions, which replication methods are possible,\n"
       "extensions, keys and replica identity, unlogged tables, large objects, sequences,\n"
       "generated columns, clients bypassing the proxy, connection limits, TLS, ownership.",
       {{"method", 0, "METHOD",
         "judge the checks for this method (logical | external | dump | trigger); without "
         "it, method-specific problems are warnings and the report names the possible methods"},
        {"proxy-addr", 0, "ADDR",
         "address the proxies connect to the source from (repeatable); sessions from any "
         "other address are reported as bypassing the proxy"},
        kSubscriber},
       "0 no check failed (warnings allowed), 1 at least one check failed, 2 usage or "
       "connection error",
       cmd_preflight},
      {"schema copy",
       "create the source's extensions and schema on the target",
       "Creates the source's extensions on the target (in the same schemas, heroku_ext\n"
       "included), then restores the source's schema there: pg_dump --schema-only --no-owner\n"
       "--no-acl, without the pgcutover schema. Idempotent: when `schema diff` finds the\n"
       "target already equal, it says so and changes nothing. Refuses a target that has a\n"
       "different, non-empty schema (drop it or use a fresh database).",
       {{"dry-run", 0, nullptr, "print what would be done, change nothing"}},
       "0 schema copied or already equal, 1 target has a conflicting schema or the restore "
       "failed, 2 usage or connection error",
       cmd_schema_copy},
      {"schema diff",
       "compare the source's and the target's catalogs",
       "Compares tables, columns (type, nullability, default), indexes, constraints and\n"
       "sequences of every user schema (not pgcutover, not objects owned by extensions) and\n"
       "prints each difference.",
       {},
       "0 schemas equal, 1 differences found, 2 usage or connection error",
       cmd_schema_diff},
      {"replicate start",
       "start (or check) replication with the chosen method",
       "logical:  publication on the source, subscription on the target with copy_data; shows\n"
       "          per-table initial-copy progress and waits until every table streams.\n"
       "external: replication run by another tool (AWS DMS, ...). Creates\n"
       "          pgcutover.heartbeat on both sides, writes a heartbeat on the source and\n"
       "          waits for it on the target. The external tool must replicate that table.\n"
       "dump:     no continuous replication; measures dump throughput on a sample and\n"
       "          estimates the cutover window (database size / throughput).\n"
       "trigger:  for sources without superuser or REPLICATION (Heroku): installs row triggers\n"
       "          that log changed keys in the source's pgcutover schema, then copies every\n"
       "          table from one exported snapshot; `replicate apply` keeps the target in sync.\n"
       "The method is recorded on the target (pgcutover.control_state) for lag and status.",
       {{"method", 0, "METHOD", "logical | external | dump | trigger (required)"},
        {"publisher-url", 0, "URL",
         "logical: the source as the TARGET server reaches it (default: the source URL)"},
        {"no-wait", 0, nullptr, "return once replication is set up, without waiting"},
        {"wait-timeout", 0, "SECONDS",
         "bound on waiting for streaming / the first heartbeat (default 3600); replication "
         "continues in the background when it runs out"},
        {"jobs", 'j', "N",
         "dump: parallel pg_dump/pg_restore workers at cutover; trigger: parallel copy "
         "workers (default 4)"},
        {"slot-timeout", 0, "SECONDS",
         "logical: bound on creating the replication slot, which waits for running "
         "transactions on the source (default 60)"},
        kSubscriber},
       "0 streaming (or set up, with --no-wait), 1 not possible here or wait timed out, "
       "2 usage or connection error",
       cmd_replicate_start},
      {"replicate apply",
       "trigger method: apply logged changes to the target (--reverse: to the source)",
       "Repeatedly takes a batch of changed keys from each table's log on the source\n"
       "(pgcutover.trigger_changes_<id>), makes each target row equal to the source's current\n"
       "row (upsert, or\n"
       "delete when gone), commits on the target, then deletes exactly those entries on the\n"
       "source. Killing it loses nothing; running it again continues. Runs until interrupted\n"
       "unless --once or --until-empty.\n"
       "--reverse, after a flip: the way back. The flip installed the same capture on the\n"
       "target; this applies the target's writes to the fenced source (its own session passes\n"
       "the fence), so that `revert` loses nothing. Run it until the revert or `finalize`.",
       {{"once", 0, nullptr, "apply one batch and exit"},
        {"reverse", 0, nullptr, "the way back: target's change log -> source"},
        {"until-empty", 0, nullptr, "exit when a round finds the log empty"},
        {"batch", 0, "N", "log entries per table per round (default 2000)"},
        {"timeout", 0, "SECONDS", "give up (exit 1) after this long"}},
       "0 applied (log empty with --until-empty), 1 apply failed or a table's capture is "
       "broken, 2 usage or connection error",
       cmd_replicate_apply},
      {"replicate status",
       "show replication state, per-table progress and lag",
       "Shows the recorded method, the state of each table (logical), and the lag.",
       {kMethod, kSubscriber},
       "0 replication streaming, 1 not running / not caught up / broken, 2 usage or "
       "connection error",
       cmd_replicate_status},
      {"replicate stop",
       "remove what replicate start created",
       "logical: drops the subscription (target), the publications and the slot (source).\n"
       "external: drops the pgcutover.heartbeat table on both sides.\n"
       "Tables and data on the target are left alone.",
       {kMethod, kSubscriber},
       "0 stopped (or nothing to stop), 1 something could not be removed (the message says "
       "what to drop by hand), 2 usage or connection error",
       cmd_replicate_stop},
      {"lag",
       "measure replication lag (bytes and seconds)",
       "logical: bytes = source pg_current_wal_lsn() - the slot's confirmed_flush_lsn;\n"
       "         seconds from the walsender's replay_lag. After a flip that built the\n"
       "         way back, the reverse link (target -> source, slot on the target).\n"
       "external: seconds = time for a heartbeat written on the source to appear on the\n"
       "         target, measured on this machine's clock.\n"
       "trigger: the change log's entries and the age of the oldest; --reverse: the way-back\n"
       "         capture's on the target (after a flip).",
       {kMethod,
        {"reverse", 0, nullptr, "the way back (target -> source) after a flip"},
        {"watch", 'w', nullptr, "repeat until interrupted (or --count readings)"},
        {"interval", 0, "SECONDS", "with --watch: time between readings (default 2)"},
        {"count", 0, "N", "with --watch: stop after N readings"},
        {"max-lag", 0, "SECONDS", "exit 1 when the last reading is above this"},
        {"publish", 0, nullptr,
         "post each reading to every proxy in [[control.proxies]] (POST /v1/replication_lag):\n"
         "their pgcutover_replication_* metrics and the shipped lag alerts follow it"},
        {"admin-timeout", 0, "SECONDS",
         "with --publish: bound on each admin API call (default 5)"}},
       "0 measured (and below --max-lag), 1 no replication running, measurement failed, "
       "above --max-lag or (one reading) not published, 2 usage or connection error",
       cmd_lag},
      {"validate",
       "compare row counts and checksums of every table, chunk by chunk",
       "Splits each table by primary key into chunks and compares count + hash of the rows'\n"
       "text on both sides, on --jobs parallel connections. Mismatching chunks are bisected\n"
       "down to a small key range and printed. While logical or external replication runs,\n"
       "each chunk is compared after the target has applied the source's position, and a\n"
       "chunk that keeps changing is reported as still in flight rather than as a mismatch.",
       {{"jobs", 'j', "N", "parallel connections per side (default 4)"},
        {"sample", 0, nullptr, "validate a random subset of chunks (see --sample-percent)"},
        {"sample-percent", 0, "P", "with --sample: percent of chunks (default 10)"},
        {"chunk-rows", 0, "N", "rows per chunk (default 50000)"},
        {"table", 't', "SCHEMA.TABLE", "only this table (repeatable)"},
        {"retries", 0, "N", "re-checks of a mismatching chunk while replicating (default 3)"},
        {"method", 0, "METHOD", "override the recorded replication method"},
        {"reverse", 0, nullptr,
         "after a flip: the target is the reference, the source the copy (before a revert);\n"
         "recorded for `revert`, which refuses while the last one failed"}},
       "0 all compared chunks equal, 1 mismatches (or rows still in flight), 2 usage or "
       "connection error",
       cmd_validate},
      {"status",
       "one screen: proxies, replication, lag, last validation, next step",
       "Shows each proxy's state, epoch, active backend and clients (GET /v1/status on the\n"
       "admin API), the replication method and lag, the last validation, and the next safe\n"
       "step. Unreachable pieces are shown as such, never hidden.",
       {},
       "0 shown, 2 usage error (unreachable databases or proxies are part of the report)",
       cmd_status},
      {"fleet",
       "list the proxies that take commands through the databases ([fleet] in their config)",
       "Reads pgcutover.fleet_member in the source and the target: each member's state,\n"
       "backend and epoch, where its control session is live, and the members that\n"
       "vanished (with when they were last seen); and the authority record (the backend a\n"
       "starting proxy follows). flip, revert and recover command every live member.",
       {},
       "0 listed, 1 no database has the fleet schema (`fleet setup`), 2 usage error",
       cmd_fleet},
      {"fleet setup",
       "create the fleet's control schema in the source and the target",
       "Creates schema pgcutover's fleet tables (members, commands, answers, authority) in\n"
       "each configured database with the connection's own rights: the application owner's\n"
       "CREATE on the database is enough (no superuser, no extension). Idempotent.",
       {},
       "0 ready, 1 a database refused, 2 usage or connection error",
       cmd_fleet_setup},
      {"pause",
       "hold new transactions on every proxy (a maintenance wait, not an error)",
       "Pauses every proxy of [[control.proxies]] and every live fleet member: running\n"
       "transactions finish (up to --drain-timeout), new ones wait at the proxy. All or none:\n"
       "when one proxy refuses, the others resume. Each proxy resumes by itself after\n"
       "--max-pause; `pgcutoverctl resume` ends it sooner.",
       {{"drain-timeout", 0, "SECONDS", "per-proxy drain bound (default 5)"},
        {"max-pause", 0, "SECONDS", "dead-man timer: each proxy resumes after this (default 30)"},
        {"admin-timeout", 0, "SECONDS",
         "bound on each proxy's answer beyond the drain (default 5)"}},
       "0 all paused, 1 a proxy refused (the others resumed), 2 usage error or no proxy",
       cmd_pause},
      {"resume",
       "let every proxy's held transactions go (after `pause`)",
       "Resumes every proxy of [[control.proxies]] and every live fleet member, and prints how\n"
       "many clients were held and the longest wait one of them saw.",
       {{"admin-timeout", 0, "SECONDS", "bound on each proxy's answer (default 5)"}},
       "0 all running, 1 a proxy did not answer or refused, 2 usage error or no proxy",
       cmd_resume},
      {"flip", "move traffic from source to target: the orchestrated cutover",
       "1 preconditions (proxies RUNNING on one epoch, lag, validation age, target prewarmed),\n"
       "2 pause every proxy, 3 fence the source (app roles read-only, their sessions ended),\n"
       "4 catch-up barrier (source position read once after the fence), 5 sequences,\n"
       "6 reverse replication (point of no return when impossible), 7 flip every proxy +\n"
       "smoke test, 8 resume. Each step is journaled (fsync); a failure before 8 rolls back.",
       cutover_options({"dry-run", "to", "method", "journal", "max-lag-bytes", "max-lag",
                        "max-validation-age", "drain-timeout", "max-pause", "catch-up-timeout",
                        "sequence-margin", "smoke-url", "admin-timeout", "publisher-url",
                        "reverse-publisher-url", "jobs", "subscriber-url", "source-subscriber-url",
                        "fence-role"}),
       "0 flipped (or rehearsed), 1 a precondition failed or the flip was rolled back, 2 usage "
       "or connection error",
       [](CommandContext& c) { return with_cutover_lock(c, "flip", cmd_flip); }},
      {"revert", "move traffic back from target to source (the flip's path the other way)",
       "Lossless when the way back ran: the logical method's reverse subscription\n"
       "(pgcutover_reverse on the source), or the trigger capture on the target (the\n"
       "trigger method's, and the logical method's when the source cannot subscribe:\n"
       "installed and armed by the flip; `replicate apply --reverse` keeps the source in\n"
       "step). Pause, fence the target, wait for the source to have the target's last write\n"
       "(reverse link) or drain the target's change log, sequences, re-arm the forward\n"
       "direction, flip every proxy to source, resume. Refuses when the last\n"
       "`validate --reverse` failed (--force).",
       cutover_options({"dry-run", "journal", "max-lag-bytes", "max-lag", "drain-timeout",
                        "max-pause", "catch-up-timeout", "sequence-margin", "smoke-url",
                        "admin-timeout", "publisher-url", "reverse-publisher-url",
                        "accept-data-loss", "force", "subscriber-url", "source-subscriber-url",
                        "fence-role"}),
       "0 reverted, 1 refused or rolled back, 2 usage or connection error",
       [](CommandContext& c) { return with_cutover_lock(c, "revert", cmd_revert); }},
      {"recover", "finish or roll back a flip/revert whose controller died (reads the journal)",
       "Reads the journal: a run that died before its flip step is rolled back (resume on the\n"
       "side being left, undo fence and replication swap); one that reached the flip step is\n"
       "finished (flip remaining proxies, resume). Run it with the same options as the flip.",
       cutover_options({"journal", "drain-timeout", "max-pause", "catch-up-timeout",
                        "sequence-margin", "smoke-url", "admin-timeout", "publisher-url",
                        "reverse-publisher-url", "subscriber-url", "source-subscriber-url",
                        "fence-role"}),
       "0 recovered or nothing to do, 1 recovery failed, 2 usage or connection error",
       [](CommandContext& c) {
         return with_cutover_lock(c, "recover", cmd_recover, kRecoverLockWait);
       }},
      {"finalize",
       "after the rollback window: drop replication both ways, remove the fence",
       "Drops subscriptions, slots and publications in both directions, removes the fence on\n"
       "the source, and prints what to do with the Heroku add-on. Refuses unless every proxy\n"
       "runs on target (--force).",
       {kSubscriber,
        kSourceSubscriber,
        kFenceRole,
        {"force", 0, nullptr, "finalize even when a proxy is not on target"}},
       "0 done, 1 refused or something left (printed), 2 usage or connection error",
       [](CommandContext& c) { return with_cutover_lock(c, "finalize", cmd_finalize); }},
  };
  return kCommands;
}

void print_options(std::ostream& os, const std::vector<OptionSpec>& opts) {
  for (const auto& o : opts) {
    std::string left = "  ";
    left += o.short_name ? std::string("-") + o.short_name + ", " : "    ";
    left += std::string("--") + o.name;
    if (o.value) left += std::string(" ") + o.value;
    if (left.size() < 30) {
      left.resize(30, ' ');
    } else {
      os << left << "\n";
      left = std::string(30, ' ');
    }
    // Wrap the help text at 96 columns, continuation lines aligned under the first.
    std::string line = left;
    std::istringstream words(o.help);
    std::string w;
    bool first = true;
    while (words >> w) {
      if (!first && line.size() + 1 + w.size() > 96) {
        os << line << "\n";
        line = std::string(30, ' ');
        first = true;
      }
      line += (first ? "" : " ") + w;
      first = false;
    }
    os << line << "\n";
  }
}

void print_command_help(std::ostream& os, const CommandSpec& c) {
  os << "Usage: pgcutoverctl " << c.words << " [options]\n\n"
     << c.summary << ".\n\n"
     << c.description << "\n";
  if (!c.options.empty()) {
    os << "\nOptions:\n";
    print_options(os, c.options);
  }
  os << "\nCommon options:\n";
  print_options(os, global_options());
  os << "\nExit codes: " << c.exit_codes << ".\n";
}

void print_main_help(std::ostream& os) {
  os << "Usage: pgcutoverctl <command> [options]\n\n"
        "The operator CLI of pgcutover: checks, schema, replication, lag and validation between\n"
        "a source (Heroku-shaped) and a target (RDS-shaped) PostgreSQL, and the proxies.\n\n"
        "Commands:\n";
  for (const auto& c : commands()) {
    std::string w = std::string("  ") + c.words;
    w.resize(22, ' ');
    os << w << c.summary << "\n";
  }
  os << "\nCommon options:\n";
  print_options(os, global_options());
  os << "\nRun `pgcutoverctl <command> --help` for a command's options; "
        "`pgcutoverctl --version` for the version.\n"
        "Exit codes: 0 ok, 1 a check failed, 2 usage or connection error.\n";
}

int usage_error(std::ostream& err, const std::string& msg, const std::string& help_hint) {
  err << "pgcutoverctl: " << msg << "\n"
      << "Try `" << help_hint << "`.\n";
  return kExitUsage;
}

const OptionSpec* find_option(const CommandSpec* c, std::string_view name, char short_name) {
  auto match = [&](const OptionSpec& o) {
    return short_name ? o.short_name == short_name : name == o.name;
  };
  if (c)
    for (const auto& o : c->options)
      if (match(o)) return &o;
  for (const auto& o : global_options())
    if (match(o)) return &o;
  return nullptr;
}

}  // namespace

int run_cli(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  if (argv.size() == 1 && (argv[0] == "--version" || argv[0] == "-V" || argv[0] == "version")) {
    out << "pgcutoverctl " << version() << "\n";
    return kExitOk;
  }
  // Which command: the longest run of leading words naming one ("replicate start").
  std::vector<std::string> words;
  size_t i = 0;
  while (i < argv.size() && !argv[i].empty() && argv[i][0] != '-') words.push_back(argv[i++]);
  const CommandSpec* cmd = nullptr;
  std::string joined;
  for (size_t n = words.size(); n > 0 && !cmd; --n) {
    std::string w;
    for (size_t k = 0; k < n; ++k) w += (k ? " " : "") + words[k];
    for (const auto& c : commands())
      if (w == c.words) {
        cmd = &c;
        joined = w;
        if (n != words.size())
          return usage_error(err, "unexpected argument '" + words[n] + "'",
                             "pgcutoverctl " + w + " --help");
      }
  }
  bool help = false;
  for (const auto& a : argv)
    if (a == "--help" || a == "-h") help = true;
  if (!cmd) {
    if (words.empty()) {
      if (help) {
        print_main_help(out);
        return kExitOk;
      }
      print_main_help(err);
      return kExitUsage;
    }
    std::string w = words[0];
    bool group = false;
    for (const auto& c : commands())
      if (std::string(c.words).rfind(w + " ", 0) == 0) group = true;
    if (group && words.size() == 1) {
      if (help) {
        out << "Subcommands of " << w << ":\n";
        for (const auto& c : commands())
          if (std::string(c.words).rfind(w + " ", 0) == 0)
            out << "  pgcutoverctl " << c.words << "  -  " << c.summary << "\n";
        return kExitOk;
      }
      return usage_error(err, "'" + w + "' needs a subcommand", "pgcutoverctl " + w + " --help");
    }
    std::string all;
    for (size_t k = 0; k < words.size(); ++k) all += (k ? " " : "") + words[k];
    return usage_error(err, "unknown command '" + all + "'", "pgcutoverctl --help");
  }
  if (help) {
    print_command_help(out, *cmd);
    return kExitOk;
  }

  CommandContext ctx;
  ctx.out = &out;
  ctx.err = &err;
  std::string hint = "pgcutoverctl " + joined + " --help";
  for (; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    const OptionSpec* opt = nullptr;
    std::optional<std::string> inline_value;
    if (a.rfind("--", 0) == 0 && a.size() > 2) {
      std::string name = a.substr(2);
      if (auto eq = name.find('='); eq != std::string::npos) {
        inline_value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      opt = find_option(cmd, name, 0);
      if (!opt) return usage_error(err, "unknown option '--" + name + "'", hint);
    } else if (a.size() == 2 && a[0] == '-') {
      opt = find_option(cmd, {}, a[1]);
      if (!opt) return usage_error(err, "unknown option '" + a + "'", hint);
    } else {
      return usage_error(err, "unexpected argument '" + a + "'", hint);
    }
    if (!opt->value) {
      if (inline_value)
        return usage_error(err, "--" + std::string(opt->name) + " takes no value", hint);
      ctx.args.add(opt->name, "");
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argv.size())
        return usage_error(
            err, "--" + std::string(opt->name) + " needs a value (" + opt->value + ")", hint);
      inline_value = argv[++i];
    }
    ctx.args.add(opt->name, *inline_value);
  }

  // Numeric options are checked here once, so handlers can trust them.
  for (const char* n :
       {"connect-timeout", "wait-timeout", "slot-timeout", "interval", "count", "jobs",
        "sample-percent", "chunk-rows", "retries", "max-lag", "max-lag-bytes", "max-validation-age",
        "drain-timeout", "max-pause", "catch-up-timeout", "sequence-margin", "admin-timeout",
        "batch", "timeout"}) {
    if (!ctx.args.has(n)) continue;
    std::string v = ctx.args.get(n);
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || d < 0)
      return usage_error(
          err, "--" + std::string(n) + " needs a non-negative number, got '" + v + "'", hint);
  }
  if (ctx.args.has("method")) {
    std::string m = ctx.args.get("method");
    if (!find_method(m))
      return usage_error(err, "--method must be " + method_choices() + ", got '" + m + "'", hint);
  }
  ctx.json = ctx.args.has("json");
  ctx.tty = isatty(STDOUT_FILENO) && !ctx.json;
  if (ctx.args.has("connect-timeout"))
    ctx.connect_timeout = std::chrono::seconds(std::atoi(ctx.args.get("connect-timeout").c_str()));

  SettingsOverrides o;
  o.config_path = ctx.args.get("config");
  if (o.config_path.empty() && !ctx.args.has("source-url") && !ctx.args.has("target-url")) {
    if (const char* env = std::getenv("PGCUTOVER_CONFIG")) o.config_path = env;
  }
  o.source_url = ctx.args.get("source-url");
  o.target_url = ctx.args.get("target-url");
  o.proxy_addrs = ctx.args.all("proxy-addr");
  std::string error;
  auto settings = load_settings(o, error);
  if (!settings) return ctx.fail(kExitUsage, error);
  ctx.settings = std::move(*settings);
  return cmd->handler(ctx);
}

}  // namespace pgcutover::control
