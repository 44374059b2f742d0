# Shared by the Ruby driver workloads (ruby_pg_workload.rb, activerecord_workload.rb): the
# environment driver_harness.bash sets, checks that count, and one thread per worker.
module DriverWorkload
  HOST = ENV.fetch('DRV_HOST')
  PORT = Integer(ENV.fetch('DRV_PORT'))
  USER = ENV.fetch('DRV_USER')
  PASSWORD = ENV.fetch('DRV_PASSWORD')
  DBNAME = ENV.fetch('DRV_DBNAME')
  CLIENTS = Integer(ENV.fetch('DRV_CLIENTS', '16'))
  ROUNDS = Integer(ENV.fetch('DRV_ROUNDS', '5'))
  RECONNECT = ENV['DRV_RECONNECT'] == '1'
  COPY_ROWS = 5

  class Checks
    attr_reader :passed

    def initialize
      @passed = 0
    end

    def eq(got, want, what)
      raise "#{what}: got #{got.inspect}, want #{want.inspect}" unless got == want

      @passed += 1
    end

    def pass
      @passed += 1
    end
  end

  def self.payload(w, r, i) = "#{w}-#{r}-#{i}"

  # Runs the block once per worker (1..CLIENTS) in its own thread with its own Checks; exits 1
  # when any worker raised.
  def self.run(driver)
    failures = Queue.new
    totals = Queue.new
    threads = (1..CLIENTS).map do |w|
      Thread.new do
        c = Checks.new
        begin
          yield w, c
        rescue Exception => e # rubocop:disable Lint/RescueException - reported with its worker
          failures << "worker #{w}: #{e.class}: #{e.message}\n  #{e.backtrace.first(4).join("\n  ")}"
        ensure
          totals << c.passed
        end
      end
    end
    threads.each(&:join)
    passed = 0
    passed += totals.pop until totals.empty?
    unless failures.empty?
      warn "FAIL: #{failures.pop}" until failures.empty?
      warn "#{driver}: worker(s) failed"
      exit 1
    end
    puts "#{driver}: #{passed} checks passed"
  end
end
