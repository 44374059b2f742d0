# ActiveRecord 6.1 workload for test_activerecord.sh (see driver_harness.bash for the common
# work). The postgresql adapter with prepared_statements: true prepares every query it builds
# (named a1, a2, ... with PQprepare, run with exec_prepared); statement_limit: 3 makes its
# statement pool evict with `DEALLOCATE aN` as SQL all the time. Models over the test tables,
# transactions that raise and roll back, the connection pool shared by 16 threads, COPY through
# the raw connection.
require 'active_record'
require 'logger'
require_relative 'driver_workload'
DW = DriverWorkload

ActiveRecord::Base.logger = nil
ActiveRecord::Base.establish_connection(
  adapter: 'postgresql', host: DW::HOST, port: DW::PORT, username: DW::USER, password: DW::PASSWORD,
  database: DW::DBNAME, sslmode: ENV.fetch('DRV_SSLMODE', 'disable'), prepared_statements: true,
  statement_limit: 3, pool: DW::CLIENTS, checkout_timeout: 60, connect_timeout: 20
)

class Account < ActiveRecord::Base
  self.table_name = 'drv_accounts'
end

class Ledger < ActiveRecord::Base
  self.table_name = 'drv_ledger'
  self.primary_key = nil
end

class Scratch < ActiveRecord::Base
  self.table_name = 'drv_scratch'
  self.primary_key = nil
end

def one_round(c, w, r)
  at = "worker #{w} round #{r}"
  c.eq(Account.find(w).balance, r * w, "#{at}: balance before")
  ActiveRecord::Base.transaction do
    c.eq(Account.where(id: w).update_all(['balance = balance + ?', w]), 1, "#{at}: update count")
    Ledger.create!(worker: w, round: r, amount: w, note: 'ok')
  end

  begin
    ActiveRecord::Base.transaction do
      Ledger.create!(worker: w, round: r, amount: 1000, note: 'rolled back')
      Account.where(id: w).pluck(Arel.sql('1 / (balance - balance)'))
    end
    raise "#{at}: 1 / 0 did not fail"
  rescue ActiveRecord::StatementInvalid => e
    c.eq(e.cause.class, PG::DivisionByZero, "#{at}: division by zero")
  end
  c.eq(Ledger.where(worker: w).where.not(note: 'ok').count, 0, "#{at}: rolled-back rows visible")

  # More distinct statements than the statement pool holds.
  4.times { |n| Scratch.create!(worker: w, round: r, n: n, note: "ar-#{n}") }
  c.eq(Scratch.where(worker: w, round: r).order(:n).pluck(:n), [0, 1, 2, 3], "#{at}: scratch rows")
  c.eq(Scratch.where(worker: w, round: r, note: 'ar-2').count, 1, "#{at}: scratch by note")

  raw = ActiveRecord::Base.connection.raw_connection
  raw.copy_data('COPY drv_copied (worker, round, i, payload) FROM STDIN') do
    DW::COPY_ROWS.times { |i| raw.put_copy_data("#{w}\t#{r}\t#{i}\t#{DW.payload(w, r, i)}\n") }
  end
  out = +''
  raw.copy_data("COPY (SELECT i, payload FROM drv_copied WHERE worker = #{w} AND round = #{r} ORDER BY i) TO STDOUT") do
    while (row = raw.get_copy_data)
      out << row
    end
  end
  c.eq(out, DW::COPY_ROWS.times.map { |i| "#{i}\t#{DW.payload(w, r, i)}\n" }.join, "#{at}: COPY TO rows")
end

# One checkout of a pooled connection. DRV_RECONNECT (session mode): the connection is closed
# afterwards, so the next checkout connects again and no idle connection in ActiveRecord's
# pool keeps one of the proxy's server connections.
def with_session
  ActiveRecord::Base.connection_pool.with_connection do |conn|
    yield
  ensure
    if DW::RECONNECT
      ActiveRecord::Base.connection_pool.remove(conn)
      conn.disconnect!
    end
  end
end

DW.run("activerecord #{ActiveRecord::VERSION::STRING}") do |w, c|
  DW::ROUNDS.times { |r| with_session { one_round(c, w, r) } }
  with_session { c.eq(Account.find(w).balance, DW::ROUNDS * w, "worker #{w}: final balance") }
end
