#include "control/cutover/flip_connections.h"

#include "control/command/exit_codes.h"

namespace pgcutover::control {

bool connect_flip_sides(CommandContext& ctx, FlipConnections& out) {
  out.source = ctx.connect_source();
  if (!out.source) return false;
  out.target = ctx.connect_target();
  if (!out.target) return false;
  auto admin = [&](const char* opt, const std::optional<ConnSpec>& fallback,
                   const char* role) -> std::optional<PgConn> {
    std::optional<ConnSpec> spec = fallback;
    if (ctx.args.has(opt)) {
      std::string e;
      spec = ConnSpec::parse(ctx.args.get(opt), e);
      if (!spec) {
        ctx.fail(kExitUsage, std::string("--") + opt + ": " + e);
        return std::nullopt;
      }
    }
    return ctx.connect(spec, role, std::string("--") + opt);
  };
  out.source_admin = admin("source-subscriber-url", ctx.settings.source, "source");
  if (!out.source_admin) return false;
  out.target_admin = admin("subscriber-url", ctx.settings.target, "target");
  if (!out.target_admin) return false;
  for (auto* c : {&*out.source, &*out.target, &*out.source_admin, &*out.target_admin})
    c->exec_script("SET default_transaction_read_only = off");
  return true;
}

}  // namespace pgcutover::control
