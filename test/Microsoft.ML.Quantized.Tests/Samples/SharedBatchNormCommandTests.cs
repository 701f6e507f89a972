using System.Buffers.Binary;

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
            var (code, output) = SamplesCli.Run("bn-shared", "--data", data, "--train-count", "40", "--valid-count", "10", "--test-count", "10",
                "--epochs", "1", "--hidden", "4", "--frame-size", "4", "--out", markdown);
            Assert.AreEqual(0, code, output);
            var text = File.ReadAllText(markdown);
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
    /// 60 training and 20 test 4x4 images in MNIST's IDX format: label 0 lights the top two rows, label 1 the bottom two,
    /// with noise; and a markdown file with an old bn-shared section.
    /// </summary>
    private static void WithTinyMnist(Action<string, string> body)
    {
        var folder = Directory.CreateTempSubdirectory("bn-shared-test").FullName;
        try
        {
            var random = new Random(7);
            void Write(string prefix, int count)
            {
                var labels = Enumerable.Range(0, count).Select(i => (byte)(i % 2)).ToArray();
                var images = labels.SelectMany(label => Enumerable.Range(0, 16).Select(p =>
                    (byte)((p / 8 == label ? 200 : 20) + random.Next(40)))).ToArray();
                File.WriteAllBytes(Path.Combine(folder, $"{prefix}-images-idx3-ubyte"), [.. Header(3, count, 4, 4), .. images]);
                File.WriteAllBytes(Path.Combine(folder, $"{prefix}-labels-idx1-ubyte"), [.. Header(1, count), .. labels]);
            }
            Write("train", 60);
            Write("t10k", 20);
            var markdown = Path.Combine(folder, "reproduction.md");
            File.WriteAllText(markdown, "intro\n<!-- bench:bn-shared -->\nold\n<!-- /bench:bn-shared -->\nend\n");
            body(folder, markdown);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static byte[] Header(byte dimensions, params int[] sizes)
    {
        var header = new byte[4 + 4 * sizes.Length];
        header[2] = 0x08;
        header[3] = dimensions;
        for (int d = 0; d < sizes.Length; d++) BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4 + 4 * d), sizes[d]);
        return header;
    }
}
