namespace Microsoft.ML.Quantized.Tests.Samples;

/// <summary>The <c>bn-shared</c> command (Hou et al. question 3) end to end on a tiny generated IDX data set.</summary>
[TestClass]
public sealed class SharedBatchNormCommandTests
{
    [TestMethod]
    public void A_tiny_run_writes_both_models_the_folded_evaluation_and_one_row_per_step()
    {
        WithTinyMnist((data, markdown) =>
        {
            var text = TinyRun(data, markdown, "--train-count", "40", "--frame-size", "4");
            StringAssert.StartsWith(text, "intro\n<!-- bench:bn-shared -->\n## Normalization helps (Hou et al. 2019), question 3");
            StringAssert.EndsWith(text, "<!-- /bench:bn-shared -->\nend\n");
            Assert.DoesNotContain("\nold\n", text);
            StringAssert.Contains(text, "Sequential MNIST, 4 steps of 4 pixel(s), LSTM 1 x 4 with `twn` recurrent weights");
            StringAssert.Contains(text, "40 train / 10 validation / 10 test images");
            StringAssert.Contains(text, "| test accuracy | accuracy on the first 40 training images |");
            StringAssert.Contains(text, "| per-step run | per step | 1 |");
            StringAssert.Contains(text, "| shared run | shared | 1 |");
            StringAssert.Contains(text, "| per-step run | its per-step sets folded into one shared set | 1 |");
            // One epoch each: both runs keep epoch 1, and the statistics never enter training, so the weights are equal.
            StringAssert.Contains(text, "kept W_hh: 0 (");
            var stepRows = text.Split('\n').Where(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\| \d+ \| ")).Select(l => l.Split('|')[1].Trim()).ToArray();
            CollectionAssert.AreEqual(new[] { "0", "1", "2", "3" }, stepRows);
            Assert.IsTrue(File.Exists(Path.Combine(Path.GetDirectoryName(markdown)!, "reproduction-bn-shared.png")), "the plot is written next to the markdown");
        });
    }

    [TestMethod]
    public void Pixel_by_pixel_writes_its_own_section_and_plot_beside_the_row_by_row_one()
    {
        WithTinyMnist((data, markdown) =>
        {
            var text = TinyRun(data, markdown, "--train-count", "20", "--frame-size", "1", "--initial-noise", "0.1");
            StringAssert.StartsWith(text, "intro\n<!-- bench:bn-shared -->\nold\n<!-- /bench:bn-shared -->\nend\n", "the row-by-row section is kept");
            var section = text[text.IndexOf("<!-- bench:bn-shared-pixel -->", StringComparison.Ordinal)..];
            StringAssert.Contains(section, "question 3: batch norm with statistics shared across time steps, pixel by pixel\n");
            StringAssert.Contains(section, "Sequential MNIST, 16 steps of 1 pixel(s)");
            StringAssert.Contains(section, "seed 1, initial hidden state drawn from N(0, 0.1^2) in training (Cooijmans et al.'s noise; zeros in evaluation), best validation epoch kept.");
            StringAssert.Contains(section, "Plot (every step): `reproduction-bn-shared-pixel.png`.");
            StringAssert.EndsWith(section, "<!-- /bench:bn-shared-pixel -->\n");
            Assert.IsTrue(File.Exists(Path.Combine(Path.GetDirectoryName(markdown)!, "reproduction-bn-shared-pixel.png")), "the plot has the section's name");
        });
    }

    [TestMethod]
    public void Each_run_checkpoints_into_its_own_folder_which_is_removed_once_the_section_is_written()
    {
        WithTinyMnist((data, markdown) =>
        {
            var checkpoints = Path.Combine(Path.GetDirectoryName(markdown)!, "checkpoints");
            // A damaged checkpoint where the per-step run keeps its own: the command reads it (and refuses it) instead of training afresh.
            var perStep = Path.Combine(checkpoints, "bn-shared-frame4-twn-h4-1ep-40-noise0-BatchPerStep");
            Directory.CreateDirectory(perStep);
            File.WriteAllText(Path.Combine(perStep, "training.checkpoint"), "not a checkpoint");
            var (code, output) = SamplesCli.Run("bn-shared", "--data", data, "--valid-count", "10", "--test-count", "10", "--epochs", "1", "--hidden", "4",
                "--train-count", "40", "--frame-size", "4", "--checkpoints", checkpoints, "--out", markdown);
            Assert.AreEqual(1, code, output);
            StringAssert.Contains(output, $"The checkpoint '{Path.Combine(perStep, "training.checkpoint")}' is damaged");
            Assert.DoesNotContain("   at ", output, "no stack trace");

            File.Delete(Path.Combine(perStep, "training.checkpoint"));
            TinyRun(data, markdown, "--train-count", "40", "--frame-size", "4");
            Assert.IsFalse(Directory.Exists(perStep), "the per-step run's checkpoint is removed");
            Assert.IsFalse(Directory.Exists(Path.Combine(checkpoints, "bn-shared-frame4-twn-h4-1ep-40-noise0-BatchShared")), "the shared run's checkpoint is removed");
        });
    }

    [TestMethod]
    public void A_frame_size_that_does_not_divide_the_image_fails_with_one_line()
    {
        WithTinyMnist((data, markdown) =>
        {
            var (code, output) = SamplesCli.Run("bn-shared", "--data", data, "--frame-size", "3", "--out", markdown);
            Assert.AreEqual(1, code, output);
            StringAssert.StartsWith(output, "error: --frame-size must divide 16; got 3.");
            Assert.DoesNotContain("   at ", output, "no stack trace");
            Assert.AreEqual("intro\n<!-- bench:bn-shared -->\nold\n<!-- /bench:bn-shared -->\nend\n", File.ReadAllText(markdown), "nothing written");
        });
    }

    /// <summary>
    /// A one-epoch <c>bn-shared</c> run (hidden 4, 10 validation and 10 test images) on <paramref name="data"/> writing to
    /// <paramref name="markdown"/>, its checkpoints to the folder <c>checkpoints</c> beside it; asserts it succeeds and returns the file's text.
    /// </summary>
    private static string TinyRun(string data, string markdown, params string[] options)
    {
        var (code, output) = SamplesCli.Run(["bn-shared", "--data", data, "--valid-count", "10", "--test-count", "10", "--epochs", "1", "--hidden", "4",
            .. options, "--checkpoints", Path.Combine(Path.GetDirectoryName(markdown)!, "checkpoints"), "--out", markdown]);
        Assert.AreEqual(0, code, output);
        return File.ReadAllText(markdown);
    }

    /// <summary>Tiny MNIST (<see cref="TinyMnist"/>) and a markdown file with an old bn-shared section.</summary>
    private static void WithTinyMnist(Action<string, string> body) => TinyMnist.With(folder =>
    {
        var markdown = Path.Combine(folder, "reproduction.md");
        File.WriteAllText(markdown, "intro\n<!-- bench:bn-shared -->\nold\n<!-- /bench:bn-shared -->\nend\n");
        body(folder, markdown);
    });
}
