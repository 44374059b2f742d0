#include "control/replication/method.h"

#include "control/command/exit_codes.h"

namespace pgcutover::control {
namespace {

// The revert without a way back: nothing to wait for, nothing to start or measure.
class LossyRevert final : public ReplicationMethod {
 public:
  std::string_view name() const override { return "none"; }
  MethodNeeds needs() const override { return {.continuous = false}; }
  int start(CommandContext& ctx) const override { return refuse(ctx); }
  int status(CommandContext& ctx) const override { return refuse(ctx); }
  int stop(CommandContext& ctx) const override { return refuse(ctx); }
  ReplicationLag lag(PgConn&, PgConn&, std::chrono::milliseconds) const override {
    ReplicationLag l;
    l.method = "none";
    l.error = "no replication runs back from the target";
    return l;
  }
  FlipStepResult flip_ready(const FlipSides&, const FlipLimits&) const override { return {}; }
  FlipStepResult flip_catch_up(const FlipSides& s, const FlipLimits&) const override {
    FlipStepResult r;
    r.data["summary"] =
        "no replication back: writes on the " + s.from_name + " since the flip are lost";
    return r;
  }

 private:
  static int refuse(CommandContext& ctx) {
    return ctx.fail(kExitUsage, "method none is the lossy revert, not a replication method");
  }
};

}  // namespace

const std::vector<const ReplicationMethod*>& replication_methods() {
  static const std::vector<const ReplicationMethod*> methods{&logical_method(), &trigger_method(),
                                                             &dump_method(), &external_method()};
  return methods;
}

const ReplicationMethod* find_method(std::string_view name) {
  for (const auto* m : replication_methods())
    if (m->name() == name) return m;
  return nullptr;
}

std::string method_choices(std::string_view last_separator) {
  const auto& all = replication_methods();
  std::string s;
  for (size_t i = 0; i < all.size(); ++i) {
    if (i > 0) s += i + 1 == all.size() ? std::string(last_separator) : std::string(", ");
    s += all[i]->name();
  }
  return s;
}

const ReplicationMethod& lossy_revert_method() {
  static const LossyRevert none;
  return none;
}

}  // namespace pgcutover::control
