namespace Microsoft.ML.Quantized.Tests.Samples;

/// <summary>The samples CLI's <c>kure</c> command rejects bad options before any training, with one line naming the option.</summary>
[TestClass]
public sealed class KureCommandTests
{
    [TestMethod]
    [DataRow("--qat-step foo", "error: --qat-step 'foo': use max")]
    [DataRow("--task nope", "error: --task 'nope': use moby, smnist or brown.")]
    [DataRow("--task moby --data /tmp", "error: --data does not apply to --task moby")]
    [DataRow("--task brown --train-count 10", "error: --train-count applies to --task smnist only, not to 'brown'.")]
    [DataRow("--max-steps 0", "error: --max-steps and --fine-tune-steps must be at least 1 and --qat-steps at least 0; got 0,")]
    [DataRow("--qat-steps -1", "error: --max-steps and --fine-tune-steps must be at least 1 and --qat-steps at least 0;")]
    [DataRow("--lambda -1", "error: --lambda must be a finite number > 0 (the paper uses 1.0); got -1.")]
    [DataRow("--hidden 0", "error: --hidden must be at least 1; got 0.")]
    [DataRow("--test-tokens -5", "error: --test-tokens must be 0 (the whole test set) or more; got -5.")]
    [DataRow("--task smnist --test-tokens 100", "error: --test-tokens applies to --task moby and brown")]
    [DataRow("--task smnist --data /no/such/folder", "error: MNIST folder '/no/such/folder' does not exist: run build/fetch-data.sh --only mnist, or pass --data DIR.")]
    [DataRow("--lambda-sweep 0.1 --lambda 2", "error: --lambda does not apply to --lambda-sweep, which fine-tunes at each of its own lambdas")]
    [DataRow("--lambda-sweep 0.1 --qat-steps 3", "error: --qat-steps does not apply to --lambda-sweep,")]
    [DataRow("--lambda-sweep 0.1 --qat-step mse", "error: --qat-step does not apply to --lambda-sweep,")]
    [DataRow("--fine-tune-seeds 2", "error: --fine-tune-seeds applies to --lambda-sweep only.")]
    [DataRow("--seeds 1,x", "error: --seeds holds 'x': each seed must be a whole number from 1, e.g. 1,2,3.")]
    [DataRow("--seeds 0", "error: --seeds holds '0': each seed must be a whole number from 1, e.g. 1,2,3.")]
    [DataRow("--seeds ,", "error: --seeds needs at least one seed, e.g. 1,2,3.")]
    [DataRow("--lambda-sweep 0.1 --seeds 1,2", "error: --seeds with --lambda-sweep takes one seed (its --fine-tune-seeds count up from it); got 1,2.")]
    [DataRow("--lambda-sweep 0.1 --fine-tune-seeds 0", "error: --fine-tune-seeds must be at least 1; got 0.")]
    [DataRow("--lambda-sweep 0.1,x", "error: --lambda-sweep holds 'x': each lambda must be a finite number > 0, e.g. 0.03,0.1,0.3,1.")]
    [DataRow("--lambda-sweep 0.1,-1", "error: --lambda-sweep holds '-1': each lambda must be a finite number > 0")]
    [DataRow("--lambda-sweep ,", "error: --lambda-sweep needs at least one lambda, e.g. 0.03,0.1,0.3,1.")]
    [DataRow("--activation-bits 4,9", "error: --activation-bits holds '9': each must be a whole number of bits from 2 to 8, e.g. 8,4,3.")]
    [DataRow("--lambda-sweep 0.1 --activation-bits 4", "error: --activation-bits does not apply to --lambda-sweep,")]
    [DataRow("--quantized-activations cell", "error: --quantized-activations names what the --activation-bits rows quantize; give --activation-bits too")]
    [DataRow("--activation-bits 4 --quantized-activations gates+state", "error: --quantized-activations 'gates+state' names the activation 'state'; join gates, hidden and cell with '+'")]
    [DataRow("--per-tensor-bits 1", "error: --per-tensor-bits holds '1': each must be a whole number of bits from 2 to 8, e.g. 8,4,3.")]
    [DataRow("--lambda-sweep 0.1 --per-tensor-bits 3", "error: --per-tensor-bits does not apply to --lambda-sweep,")]
    [DataRow("--statistic skew", "error: --statistic 'skew': use kurtosis (the paper's) or cv")]
    [DataRow("--task brown --data /no/such/folder", "error: Data folder '/no/such/folder' does not exist: run build/fetch-data.sh first, or pass --data DIR.")]
    public void Bad_options_fail_fast_with_one_line(string options, string expected)
    {
        var (code, output) = SamplesCli.Run(["kure", .. options.Split(' ')]);
        Assert.AreEqual(1, code, output);
        StringAssert.StartsWith(output, expected);
        Assert.DoesNotContain("   at ", output, "no stack trace");
        Assert.DoesNotContain("Written to", output, "nothing written");
    }

    [TestMethod]
    public void A_tiny_run_writes_its_section_with_the_three_fine_tunings_and_both_kure_models_statistics_and_row_steps_their_own()
    {
        // Scored on part of the test set (the first 300 characters): the section's name says so.
        WithMarkdownFile("before\n<!-- bench:kure-test300 -->\nold\n<!-- /bench:kure-test300 -->\n\nafter\n", file =>
        {
            var text = TinyRun(file, "--fine-tune-steps", "1", "--qat-steps", "1");
            StringAssert.StartsWith(text, "before\n<!-- bench:kure-test300 -->\n## KURE: one float model, many bit widths (Moby Dick character LM)");
            StringAssert.EndsWith(text, "<!-- /bench:kure-test300 -->\n\nafter\n", "the blank line after the section stays");
            Assert.DoesNotContain("old", text);
            StringAssert.Contains(text, "| weights | trained | + fine-tune, no KURE | + fine-tune, KURE (lambda 0.01) | + fine-tune, KURE per row (lambda 0.01) |");
            StringAssert.Contains(text, "| weights | 4-bit QAT, no KURE | 4-bit QAT, KURE (lambda 0.01) | 4-bit QAT, KURE per row (lambda 0.01) |");
            StringAssert.Contains(text, "### Weight and gate statistics after fine-tuning with KURE (lambda 0.01)");
            StringAssert.Contains(text, "### Weight and gate statistics after fine-tuning with KURE per row (lambda 0.01)");
            StringAssert.Contains(text, "| mean row kurtosis of the recurrent weights |");
            StringAssert.Contains(text, "on the first 300 of");
            StringAssert.Contains(text, "| 3-bit (`uniform3`) |");

            // One step per row: its own section after the first, row quantizers in both parts.
            var rows = TinyRun(file, "--fine-tune-steps", "1", "--qat-steps", "1", "--row-steps");
            StringAssert.StartsWith(rows, text.TrimEnd('\n'), "the per-tensor section is kept");
            StringAssert.EndsWith(rows, "<!-- /bench:kure-rows-test300 -->\n");
            var section = rows[rows.IndexOf("<!-- bench:kure-rows-test300 -->", StringComparison.Ordinal)..];
            StringAssert.Contains(section, "## KURE: one float model, many bit widths (Moby Dick character LM, one step per row)");
            StringAssert.Contains(section, "uniform symmetric, one step per weight row (`-row`)");
            StringAssert.Contains(section, "| 3-bit (`uniform3-row`) |");
            StringAssert.Contains(section, "| 5-bit (`uniform5-mse-row`) |");
        });
    }

    [TestMethod]
    public void Activation_and_per_tensor_bits_add_rows_and_a_gate_histogram_figure_and_cv_its_own_section()
    {
        WithMarkdownFile("", file =>
        {
            var text = TinyRun(file, "--fine-tune-steps", "1", "--qat-steps", "0", "--activation-bits", "4,2", "--per-tensor-bits", "3", "--statistic", "cv");
            StringAssert.Contains(text, "<!-- bench:kure-test300-cv -->\n## KURE: one float model, many bit widths (Moby Dick character LM, coefficient of variation in place of the kurtosis)");
            StringAssert.Contains(text, "| weights | trained | + fine-tune, no KURE | + fine-tune, KURE cv (lambda 0.01) | + fine-tune, KURE cv per row (lambda 0.01) |");
            var rows = text.Split('\n').Where(l => l.StartsWith("| activations", StringComparison.Ordinal)).Select(l => l.Split(" | ")[0]).ToArray();
            // Float-weight rows once; the 4-bit-weight rows under each step rule (max, then least error).
            CollectionAssert.AreEqual(new[]
            {
                "| activations 2-bit, float weights", "| activations 4-bit, float weights",
                "| activations 2-bit, 4-bit weights (`uniform4`)", "| activations 4-bit, 4-bit weights (`uniform4`)",
                "| activations 2-bit, 4-bit weights (`uniform4-mse`)", "| activations 4-bit, 4-bit weights (`uniform4-mse`)",
            }, rows, text);
            // One tensor at a time: each recurrent tensor, then its four gate blocks, under each step rule; every cell a ratio with its share.
            var perTensor = text.Split('\n').Where(l => l.StartsWith("| `layers.", StringComparison.Ordinal) && l.Contains("(`uniform3", StringComparison.Ordinal)).ToArray();
            CollectionAssert.AreEqual(new[] { "uniform3", "uniform3-mse" }.SelectMany(q => new[] { "weight_ih", "weight_hh" }
                .SelectMany(t => new[] { $"`layers.0.{t}`" }.Concat(new[] { "input", "forget", "candidate", "output" }.Select(g => $"`layers.0.{t}, {g} gate`")))
                .Select(label => $"| {label} (`{q}`)")).ToArray(), perTensor.Select(l => l.Split(" | ")[0]).ToArray(), text);
            Assert.IsTrue(perTensor.All(l => l.Split(" | ").Skip(1).All(cell => System.Text.RegularExpressions.Regex.IsMatch(cell, @"^\d+\.\d{3} \(-?\d+ %; error \d+\.\d %\)( \|)?$"))), string.Join("\n", perTensor));
            var figure = Path.Combine(Path.GetDirectoryName(file)!, $"{Path.GetFileNameWithoutExtension(file)}-kure-test300-cv-gates.png");
            try
            {
                StringAssert.Contains(text, $"`{Path.GetFileName(figure)}`");
                var png = File.ReadAllBytes(figure);
                CollectionAssert.AreEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4], "a PNG file");
            }
            finally
            {
                File.Delete(figure);
            }
        });
    }

    [TestMethod]
    public void Quantized_activations_name_what_the_activation_rows_quantize()
    {
        WithMarkdownFile("", file =>
        {
            var text = TinyRun(file, "--fine-tune-steps", "1", "--qat-steps", "0", "--activation-bits", "4", "--quantized-activations", "cell");
            StringAssert.Contains(text, "<!-- bench:kure-test300-cell -->\n## KURE: one float model, many bit widths (Moby Dick character LM)", "its own section");
            StringAssert.Contains(text, "Rows `cell state k-bit`: the cell state quantized after training as well");
            var rows = text.Split('\n').Where(l => l.StartsWith("| cell state", StringComparison.Ordinal)).Select(l => l.Split(" | ")[0]).ToArray();
            CollectionAssert.AreEqual(new[] { "| cell state 4-bit, float weights", "| cell state 4-bit, 4-bit weights (`uniform4`)", "| cell state 4-bit, 4-bit weights (`uniform4-mse`)" }, rows, text);
            File.Delete(Path.Combine(Path.GetDirectoryName(file)!, $"{Path.GetFileNameWithoutExtension(file)}-kure-test300-cell-gates.png"));
        });
    }

    [TestMethod]
    public void Several_seeds_give_each_cell_the_mean_and_half_range_of_the_runs_under_each_seed_alone_and_then_each_seed_s_value()
    {
        string[][] bySeed = [];
        string[][] Table(string options)
        {
            string[][] rows = [];
            WithMarkdownFile("", file =>
            {
                var text = TinyRun(file, ["--fine-tune-steps", "1", "--qat-steps", "0", .. options.Split(' ')]);
                string[][] Rows(string after) => text.Split('\n').SkipWhile(l => !l.StartsWith(after, StringComparison.Ordinal)).SkipWhile(l => !l.StartsWith("| weights |", StringComparison.Ordinal))
                    .Skip(2).TakeWhile(l => l.StartsWith("| ", StringComparison.Ordinal)).Select(l => l.Trim('|', ' ').Split(" | ")).ToArray();
                rows = Rows("## KURE");
                if (options.Contains(',', StringComparison.Ordinal))
                {
                    StringAssert.Contains(text, "(lower is better), mean over seeds 1 and 2 ± half their range (each seed trains its own float model).");
                    StringAssert.Contains(text, "### Weight and gate statistics after fine-tuning with KURE (lambda 0.01), seed 1");
                    bySeed = Rows("### Seed by seed: each cell lists seeds 1 and 2 in that order");
                }
                else
                    Assert.DoesNotContain("### Seed by seed", text, "one seed has no seed-by-seed table");
            });
            return rows;
        }
        static double Value(string cell) => double.Parse(cell.Replace(" %", "", StringComparison.Ordinal), System.Globalization.CultureInfo.InvariantCulture);

        var one = Table("--seeds 1");
        var two = Table("--seeds 2");
        var both = Table("--seeds 1,2");
        CollectionAssert.AreEqual(one.Select(r => r[0]).ToArray(), both.Select(r => r[0]).ToArray(), "the same rows");
        Assert.AreNotEqual(one[0][1], two[0][1], "seed 2 trains another float model");
        for (int r = 0; r < both.Length; r++)
            for (int c = 1; c < both[r].Length; c++)
            {
                var parts = both[r][c].Split(" ± ");
                Assert.HasCount(2, parts, both[r][c]);
                double a = Value(one[r][c]), b = Value(two[r][c]);
                // Each input was rounded to its last printed digit (0.001, or 0.1 in a percentage), so allow one unit of it.
                double unit = one[r][c].EndsWith(" %", StringComparison.Ordinal) ? 0.1 : 0.001;
                Assert.AreEqual((a + b) / 2, Value(parts[0]), unit, $"{both[r][0]}, column {c}: mean");
                Assert.AreEqual(Math.Abs(a - b) / 2, Value(parts[1]), unit, $"{both[r][0]}, column {c}: half range");
            }
        // The seed-by-seed table repeats the rows with each seed's own value: exactly what each seed's run printed alone.
        CollectionAssert.AreEqual(both.Select(r => r[0]).ToArray(), bySeed.Select(r => r[0]).ToArray(), "the same rows, seed by seed");
        for (int r = 0; r < bySeed.Length; r++)
            for (int c = 1; c < bySeed[r].Length; c++)
                Assert.AreEqual($"{one[r][c]} / {two[r][c]}", bySeed[r][c], $"{bySeed[r][0]}, column {c}");
    }

    [TestMethod]
    public void A_tiny_lambda_sweep_writes_its_own_section_with_one_row_per_form_and_lambda_and_the_seed_spread()
    {
        WithMarkdownFile("before\n<!-- bench:kure-test300 -->\nkept\n<!-- /bench:kure-test300 -->\n", file =>
        {
            var text = TinyRun(file, "--fine-tune-steps", "5", "--lambda-sweep", "0.1, 1");
            StringAssert.StartsWith(text, "before\n<!-- bench:kure-test300 -->\nkept\n<!-- /bench:kure-test300 -->\n", "parts a and b's section is kept");
            var section = text[text.IndexOf("<!-- bench:kure-test300-lambda -->", StringComparison.Ordinal)..];
            StringAssert.Contains(section, "## KURE: lambda sweep (Moby Dick character LM)");
            StringAssert.Contains(section, "each under 2 fine-tuning seeds (1, 2;");
            StringAssert.EndsWith(section, "<!-- /bench:kure-test300-lambda -->\n");
            var rows = section.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal)).Skip(1).Select(l => l.Split(" | ")).ToArray();
            CollectionAssert.AreEqual(new[] { "| no KURE", "| KURE per tensor", "| KURE per tensor", "| KURE per row", "| KURE per row" }, rows.Select(r => r[0]).ToArray());
            CollectionAssert.AreEqual(new[] { "0", "0.1", "1", "0.1", "1" }, rows.Select(r => r[1]).ToArray());
            // Moby Dick has no dropout and a language model's batches come in order: both seeds fine-tune the same copy.
            foreach (var row in rows)
                StringAssert.EndsWith(row[2], " ± 0.000", string.Join(" | ", row));
            // The kurtosis term did its work: the paper's form at lambda 1 ends nearer 1.8 than plain fine-tuning (column 8: mean kurtosis).
            double Kurtosis(string[] row) => double.Parse(row[7].Split(" ± ")[0], System.Globalization.CultureInfo.InvariantCulture);
            Assert.IsLessThan(Math.Abs(Kurtosis(rows[0]) - 1.8), Math.Abs(Kurtosis(rows[2]) - 1.8), section);
        });
    }

    [TestMethod]
    public void A_tiny_lambda_sweep_of_the_cv_term_writes_its_own_section_beside_the_kurtosis_sweep()
    {
        WithMarkdownFile("<!-- bench:kure-test300-lambda -->\nkept\n<!-- /bench:kure-test300-lambda -->\n", file =>
        {
            var text = TinyRun(file, "--fine-tune-steps", "5", "--fine-tune-seeds", "1", "--lambda-sweep", "100", "--statistic", "cv");
            StringAssert.StartsWith(text, "<!-- bench:kure-test300-lambda -->\nkept\n<!-- /bench:kure-test300-lambda -->\n", "the kurtosis sweep's section is kept");
            var section = text[text.IndexOf("<!-- bench:kure-test300-lambda-cv -->", StringComparison.Ordinal)..];
            StringAssert.Contains(section, "## KURE: lambda sweep (Moby Dick character LM, coefficient of variation in place of the kurtosis)");
            StringAssert.Contains(section, "without the term on the coefficient of variation of the absolute deviations");
            var rows = section.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal)).Skip(1).Select(l => l.Split(" | ")).ToArray();
            CollectionAssert.AreEqual(new[] { "| no KURE", "| KURE per tensor", "| KURE per row" }, rows.Select(r => r[0]).ToArray());
            // The term acted: at lambda 100 the per-tensor copy's mean kurtosis (column 8) is not plain fine-tuning's. (The tiny
            // model starts near uniform, kurtosis 1.8, so the direction of the move is not the point here.)
            Assert.AreNotEqual(rows[0][7], rows[1][7], section);
        });
    }

    /// <summary>Runs <paramref name="test"/> on a temporary Markdown file that starts as <paramref name="markdown"/>, then deletes it.</summary>
    private static void WithMarkdownFile(string markdown, Action<string> test)
    {
        var file = Path.Combine(Path.GetTempPath(), $"kure-{Guid.NewGuid():N}.md");
        File.WriteAllText(file, markdown);
        try
        {
            test(file);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>
    /// A tiny <c>kure</c> run on the embedded Moby Dick (hidden 8, 2 float steps, 300 test characters) writing to
    /// <paramref name="file"/>; asserts it succeeds and returns the file's text.
    /// </summary>
    private static string TinyRun(string file, params string[] options)
    {
        var (code, output) = SamplesCli.Run(["kure", "--hidden", "8", "--max-steps", "2", "--test-tokens", "300", .. options, "--out", file]);
        Assert.AreEqual(0, code, output);
        return File.ReadAllText(file);
    }
}
