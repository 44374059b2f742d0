// The replication methods as the commands find them: one object per name, each declaring what
// it needs, so preflight, validate and the flip ask instead of comparing names.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "control/replication/method.h"

namespace pgcutover::control {
namespace {

TEST(control_method, EveryMethodIsFoundByItsOwnNameOnce) {
  std::set<std::string> names;
  for (const ReplicationMethod* m : replication_methods()) {
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(find_method(m->name()), m);
    EXPECT_TRUE(names.insert(std::string(m->name())).second) << m->name();
  }
  EXPECT_EQ(names, (std::set<std::string>{"logical", "trigger", "dump", "external"}));
  EXPECT_EQ(find_method("Logical"), nullptr);
  EXPECT_EQ(find_method(""), nullptr);
  // The lossy revert is a method for the flip only, never a choice for `replicate start`.
  EXPECT_EQ(find_method(lossy_revert_method().name()), nullptr);
}

TEST(control_method, ChoicesListEveryMethodInPreflightOrder) {
  EXPECT_EQ(method_choices(), "logical, trigger, dump or external");
  EXPECT_EQ(method_choices(" | "), "logical, trigger, dump | external");
}

TEST(control_method, NeedsMatchWhatEachMethodAsksOfTheDatabases) {
  MethodNeeds logical = logical_method().needs();
  EXPECT_TRUE(logical.logical_decoding);
  EXPECT_TRUE(logical.target_subscription);
  EXPECT_TRUE(logical.continuous);
  MethodNeeds trigger = trigger_method().needs();
  EXPECT_FALSE(trigger.logical_decoding);
  EXPECT_TRUE(trigger.primary_keys);
  EXPECT_TRUE(trigger.table_ownership);
  EXPECT_TRUE(trigger.continuous);
  MethodNeeds external = external_method().needs();
  EXPECT_TRUE(external.logical_decoding);
  EXPECT_FALSE(external.target_subscription);
  EXPECT_FALSE(dump_method().needs().continuous);
  EXPECT_FALSE(dump_method().needs().logical_decoding);
}

// The way back the preflight promises is the one the flip builds: a capture on the target for
// exactly the methods whose revert runs over the trigger method's capture, a reverse
// subscription for the logical method only, nothing for the others.
TEST(control_method, WayBackThePreflightPromisesIsTheOneTheFlipBuilds) {
  for (const ReplicationMethod* m :
       {&logical_method(), &trigger_method(), &external_method(), &dump_method()}) {
    const WayBackKinds k = m->way_back_kinds();
    EXPECT_EQ(k.target_capture, &m->way_back_method() == &trigger_method()) << m->name();
    EXPECT_EQ(k.reverse_subscription, m == &logical_method()) << m->name();
  }
}

TEST(control_method, OnlyReplicatingMethodsProveCatchUp) {
  EXPECT_TRUE(logical_method().proves_catch_up());
  EXPECT_TRUE(external_method().proves_catch_up());
  EXPECT_FALSE(dump_method().proves_catch_up());
  EXPECT_FALSE(lossy_revert_method().proves_catch_up());
}

}  // namespace
}  // namespace pgcutover::control
