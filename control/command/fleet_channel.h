// The controller's side of the fleet channel (common/fleet_contract.h, docs/fleet.md): the
// proxies that registered in the databases, commands written to every channel database under
// one key with a NOTIFY, and the members' answers waited for on LISTEN (no polling loop: the
// wait wakes when an answer is committed). Also the authority record a flip writes before any
// gate opens on the destination.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/command/settings.h"
#include "control/db/pg_conn.h"

namespace pgcutover::control {

struct FleetMember {
  std::string name, host, version, admin, backend, state;
  std::uint64_t epoch = 0;
  int pid = 0;
  bool live = false;                 // its control session holds its lock in at least one database
  std::vector<std::string> live_in;  // "source", "target"
  double seen_ago_s = 0;             // since its row was last written (registration, command)
};

struct FleetCommand {
  std::string member;
  std::string body;
};

struct FleetAnswer {
  bool answered = false;
  int status = 0;
  std::string body;
  std::string via;      // the database the answer was read from
  std::string problem;  // why no database took the command (when none did)
};

// The last cutover run recorded in the channel's databases (pgcutover.cutover_run).
struct CutoverRunRecord {
  std::string run, direction, controller, begin_data, started_at;
  bool ended = false;
  std::string outcome;
};

struct FleetAuthority {
  std::string database;  // source | target
  std::optional<std::string> backend;
  std::uint64_t epoch = 0;
};

class FleetChannel {
 public:
  // Opens one session to each configured side (source, target) that answers and has the fleet
  // schema. nullopt when none has it; `problems` says why for each side that did not open.
  static std::unique_ptr<FleetChannel> open(const ControlSettings& settings,
                                            std::chrono::seconds connect_timeout,
                                            std::vector<std::string>& problems);

  // Every member either database knows, live ones first (by name).
  std::vector<FleetMember> members();
  // The same method and path to each member (its own body), in one transaction per database;
  // waits until every member answered on either database, or `timeout`.
  // `broadcast_body`: also address the command to '*' with this body, for a proxy that joins
  // before it expires (it runs it before its first client); it supersedes the previous '*'
  // command (a resume ends the window of the pause before it). `broadcast_ttl`: how long the
  // '*' command stays valid (a pause: as long as it may last); default `timeout`.
  // `broadcast_except`: members commanded otherwise (by name, or by their admin API).
  std::vector<FleetAnswer> send(const std::string& method, const std::string& path,
                                const std::vector<FleetCommand>& commands,
                                std::chrono::milliseconds timeout,
                                const std::optional<std::string>& broadcast_body = std::nullopt,
                                std::chrono::milliseconds broadcast_ttl = {},
                                const std::vector<std::string>& broadcast_except = {});
  // pgcutover.fleet_authority := (backend, epoch) in every channel database. Returns one
  // problem per database it could not write ("" when all were written).
  std::string record_authority(const std::string& backend, std::uint64_t epoch);
  std::vector<FleetAuthority> authority();
  // pgcutover.cutover_run := `run` begun (not ended), or ended with `outcome`, in every channel
  // database. One problem per database not written ("" when all were).
  std::string record_run_begin(const std::string& run, const std::string& direction,
                               const std::string& controller, const std::string& begin_data);
  std::string record_run_end(const std::string& run, const std::string& outcome);
  // The last run any database recorded (the newest; ended when either says so).
  std::optional<CutoverRunRecord> last_run();
  std::vector<std::string> databases() const;

 private:
  struct Db {
    std::string side;
    PgConn conn;
  };
  std::vector<Db> dbs_;
  std::uint64_t sent_ = 0;
};

// Creates (or completes) the fleet schema in one database, with the connection's own rights.
bool setup_fleet_schema(PgConn& conn, PgError& error);

}  // namespace pgcutover::control
