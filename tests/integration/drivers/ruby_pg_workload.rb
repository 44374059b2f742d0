# ruby-pg workload for test_ruby_pg.sh (see driver_harness.bash for the common work).
# conn.prepare is libpq's PQprepare (Parse + Sync: the proxy answers it without a server
# connection) and exec_prepared runs the statement later, in another transaction. Also:
# DEALLOCATE as SQL then prepare of the same name with another text, a statement with a syntax
# error (its error comes from prepare straight to PostgreSQL, from the first exec_prepared
# through the proxy in transaction mode: either is accepted, the connection must go on), a
# libpq pipeline with an error in the middle, COPY in and out.
require 'pg'
require_relative 'driver_workload'
DW = DriverWorkload

STATEMENTS = {
  'balance' => 'SELECT balance FROM drv_accounts WHERE id = $1',
  'credit' => 'UPDATE drv_accounts SET balance = balance + $1 WHERE id = $2',
  'ledger' => "INSERT INTO drv_ledger VALUES ($1, $2, $3, 'ok')",
  'bad_row' => "INSERT INTO drv_ledger VALUES ($1, $2, 1000, 'rolled back')",
  'divide' => 'SELECT 1 / $1::int',
  'not_ok' => "SELECT count(*) FROM drv_ledger WHERE worker = $1 AND note <> 'ok'"
}.freeze

def connect
  conn = PG.connect(host: DW::HOST, port: DW::PORT, user: DW::USER, password: DW::PASSWORD,
                    dbname: DW::DBNAME, sslmode: ENV.fetch('DRV_SSLMODE', 'disable'), connect_timeout: 20)
  STATEMENTS.each { |name, sql| conn.prepare(name, sql) }
  conn
end

def one_round(conn, c, w, r)
  at = "worker #{w} round #{r}"
  c.eq(conn.exec_prepared('balance', [w]).getvalue(0, 0).to_i, r * w, "#{at}: balance before")
  conn.transaction do
    c.eq(conn.exec_prepared('credit', [w, w]).cmd_tuples, 1, "#{at}: update count")
    c.eq(conn.exec_prepared('ledger', [w, r, w]).cmd_tuples, 1, "#{at}: insert count")
  end

  begin
    conn.transaction do
      conn.exec_prepared('bad_row', [w, r])
      conn.exec_prepared('divide', [0])
    end
    raise "#{at}: 1 / 0 did not fail"
  rescue PG::DivisionByZero
    c.pass
  end
  c.eq(conn.exec_prepared('not_ok', [w]).getvalue(0, 0).to_i, 0, "#{at}: rolled-back rows visible")

  # Close (as SQL) and re-prepare the same name with another text.
  conn.prepare('reused', 'SELECT $1::int + 1')
  c.eq(conn.exec_prepared('reused', [w]).getvalue(0, 0).to_i, w + 1, "#{at}: reused, first text")
  conn.exec('DEALLOCATE reused')
  conn.prepare('reused', 'SELECT $1::int * 10')
  c.eq(conn.exec_prepared('reused', [w]).getvalue(0, 0).to_i, w * 10, "#{at}: reused, second text")
  conn.exec('DEALLOCATE "reused"')

  # A statement PostgreSQL refuses: the error reaches the client, the connection goes on.
  begin
    conn.prepare("broken_#{r}", 'SELEC 1')
    conn.exec_prepared("broken_#{r}")
    raise "#{at}: a syntax error was accepted"
  rescue PG::SyntaxError
    c.pass
  end
  c.eq(conn.exec_prepared('balance', [w]).getvalue(0, 0).to_i, (r + 1) * w, "#{at}: after the syntax error")

  # libpq pipeline: the statement before the error has its result, the one after is aborted.
  conn.enter_pipeline_mode
  conn.send_query_prepared('balance', [w])
  conn.send_query_prepared('divide', [0])
  conn.send_query_prepared('balance', [w])
  conn.pipeline_sync
  results = []
  4.times do
    res = conn.get_result
    status = res.result_status
    results << status
    res.clear
    conn.get_result unless status == PG::PGRES_PIPELINE_SYNC # the NULL after each result
  end
  conn.exit_pipeline_mode
  c.eq(results, [PG::PGRES_TUPLES_OK, PG::PGRES_FATAL_ERROR, PG::PGRES_PIPELINE_ABORTED, PG::PGRES_PIPELINE_SYNC],
       "#{at}: pipeline results")

  conn.copy_data('COPY drv_copied (worker, round, i, payload) FROM STDIN') do
    DW::COPY_ROWS.times { |i| conn.put_copy_data("#{w}\t#{r}\t#{i}\t#{DW.payload(w, r, i)}\n") }
  end
  out = +''
  conn.copy_data("COPY (SELECT i, payload FROM drv_copied WHERE worker = #{w} AND round = #{r} ORDER BY i) TO STDOUT") do
    while (row = conn.get_copy_data)
      out << row
    end
  end
  c.eq(out, DW::COPY_ROWS.times.map { |i| "#{i}\t#{DW.payload(w, r, i)}\n" }.join, "#{at}: COPY TO rows")
end

DW.run("ruby-pg #{PG::VERSION}") do |w, c|
  conn = nil
  DW::ROUNDS.times do |r|
    if conn.nil? || DW::RECONNECT
      conn&.close
      conn = connect
    end
    one_round(conn, c, w, r)
  end
  c.eq(conn.exec_prepared('balance', [w]).getvalue(0, 0).to_i, DW::ROUNDS * w, "worker #{w}: final balance")
ensure
  conn&.close
end
